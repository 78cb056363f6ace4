"""keel: from data to a served, recorded prediction.

The public API users import from. Heavy libraries (pandas, SQLAlchemy, fsspec) load only
when the objects that need them are first used, so ``import keel`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel import errors
from keel.entities import Metric

__version__ = "0.1.0"

__all__ = ["Client", "Metric", "__version__", "errors"]

if TYPE_CHECKING:
    from keel.tracking.client import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from keel.tracking.client import Client

        return Client
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
