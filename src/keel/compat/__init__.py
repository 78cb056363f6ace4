"""Homes for code written for the systems keel replaces, one sub-package per system.

Each sub-package has the layout of the system it stands in for, so moving code to keel
changes only the prefix of its imports: ``import mllaunchpad as mllp`` becomes
``import keel.compat.launchpad as mllp`` and ``from ml2p.core import Model`` becomes
``from keel.compat.ml2p.core import Model``. keel's own parts never import from here; the
base classes users subclass name their adapter (``__keel_adapter__``), which
:mod:`keel.models.styles` imports when it finds such a class in the user's module.
"""
