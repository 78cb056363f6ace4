"""Data sources and sinks configured in keel.yml, found by type string, cached, tagged.

>>> from keel.data import DataCatalog
>>> catalog = DataCatalog.from_config()          # keel.yml's datasources and datasinks
>>> train = catalog.source("train").get_dataframe()
>>> catalog.sink("scores").put_dataframe(train)

New types subclass :class:`DataSource` / :class:`DataSink` and register with
:func:`register_source` / :func:`register_sink` (in a module listed under ``plugins:``) or
through the ``keel.data_sources`` / ``keel.data_sinks`` entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.data.base import (
    PHASES,
    DataContext,
    DataSettings,
    DataSink,
    DataSource,
    SinkSettings,
    SourceSettings,
)
from keel.data.registry import register_sink, register_source

if TYPE_CHECKING:
    from keel.data.catalog import DataCatalog, sources_and_sinks
    from keel.data.helpers import order_columns, to_plain_python

__all__ = [
    "PHASES",
    "DataCatalog",
    "DataContext",
    "DataSettings",
    "DataSink",
    "DataSource",
    "SinkSettings",
    "SourceSettings",
    "order_columns",
    "register_sink",
    "register_source",
    "sources_and_sinks",
    "to_plain_python",
]

_LAZY = {
    "DataCatalog": "keel.data.catalog",
    "sources_and_sinks": "keel.data.catalog",
    "order_columns": "keel.data.helpers",
    "to_plain_python": "keel.data.helpers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
