"""keel: from data to a served, recorded prediction.

The public API users import from. Heavy libraries (pandas, SQLAlchemy, fsspec) load only
when the objects that need them are first used, so ``import keel`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel import errors

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Metric",
    "Model",
    "ModelContext",
    "__version__",
    "errors",
    "load_model",
    "report",
]

if TYPE_CHECKING:
    from keel.entities import Metric
    from keel.lifecycle.loading import load_model
    from keel.models.base import Model, ModelContext
    from keel.models.report import report
    from keel.tracking.client import Client

_LAZY = {
    "Client": "keel.tracking.client",
    "Metric": "keel.entities",
    "Model": "keel.models.base",
    "ModelContext": "keel.models.base",
    "report": "keel.models.report",
    "load_model": "keel.lifecycle.loading",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
