"""The old home of mlopen-style code: the same module as :mod:`keel.compat.mlopen`."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("keel.compat.mlopen")
