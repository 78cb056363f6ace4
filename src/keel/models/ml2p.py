"""The old home of ML2P-style code: the same module as :mod:`keel.compat.ml2p.core`."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("keel.compat.ml2p.core")
