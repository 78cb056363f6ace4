"""The model contract, its run context, save formats and the seed-style adapters.

``keel.models.Model`` is what model code subclasses; ``keel.models.launchpad``,
``keel.models.ml2p`` and ``keel.models.mlopen`` let code written for ML Launchpad, ML2P and
mlopen run on keel with only its import line changed.
"""

from __future__ import annotations

from keel.models.base import MemoryTracker, Model, ModelContext, Tracker
from keel.models.formats import SaveFormat, known_formats, register_format
from keel.models.libraries import LibraryVersionWarning
from keel.models.report import report

__all__ = [
    "LibraryVersionWarning",
    "MemoryTracker",
    "Model",
    "ModelContext",
    "SaveFormat",
    "Tracker",
    "known_formats",
    "register_format",
    "report",
]
