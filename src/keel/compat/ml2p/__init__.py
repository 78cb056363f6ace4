"""ML2P on keel: existing ML2P projects run with their imports pointed here.

``from ml2p.core import …`` becomes ``from keel.compat.ml2p.core import …``, ``from
ml2p.errors import …`` becomes ``from keel.compat.ml2p.errors import …`` and ``from ml2p
import hyperparameters`` becomes ``from keel.compat.ml2p import hyperparameters``. Their
ml2p.yml is read by :mod:`keel.config.ml2p_file`; their CLI verbs are ``keel ml2p …`` and
``keel ml2p-docker …`` (:mod:`keel.cli.ml2p`).
"""

#: The ML2P release whose API and wire shapes this package follows (answered as
#: ``ml2p_version`` by ``/ping`` and in prediction metadata).
__version__ = "0.6.0"

__all__ = ["__version__"]
