"""mlopen's ``mlopenapp.utils`` on keel: ``io_handler``, ``plotter``, ``data_handler`` and
``params_handler``, the helpers control files import (``from mlopenapp.utils import
io_handler as io`` becomes ``from keel.compat.mlopen.utils import io_handler as io``)."""
