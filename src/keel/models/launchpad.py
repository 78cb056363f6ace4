"""The old home of ML Launchpad-style code: the same module as :mod:`keel.compat.launchpad`."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("keel.compat.launchpad")
