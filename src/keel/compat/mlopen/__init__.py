"""mlopen on keel: control files (``train`` + ``run_pipeline``) run with their imports
pointed here.

``from mlopenapp.utils import io_handler as io`` becomes ``from keel.compat.mlopen.utils
import io_handler as io`` (likewise ``plotter``, ``data_handler``, ``params_handler``). The
pipeline gets its input as a file object like Django's ``File`` (:mod:`.files`), its saved
objects as mlopen's ``io.save_pipeline`` kept them (:mod:`.utils.io_handler`), and what
``run_pipeline`` returns is stored and shown (:mod:`.preds`). :mod:`.adapter` is keel's model
contract over a control file. ``keel.models.mlopen`` is this same module.
"""

from keel.compat.mlopen.adapter import MlopenModel, adapt, pipeline_input
from keel.compat.mlopen.files import PipelineFile
from keel.compat.mlopen.preds import plain_preds
from keel.compat.mlopen.utils import io_handler
from keel.compat.mlopen.utils.io_handler import load_pipeline, named, save_pipeline

#: the older name of :func:`~.utils.io_handler.named`
_named = named

__all__ = [
    "MlopenModel",
    "PipelineFile",
    "adapt",
    "io_handler",
    "load_pipeline",
    "pipeline_input",
    "plain_preds",
    "save_pipeline",
]
