"""The registry of data source and sink types, looked up by the ``type:`` string.

Built-in types register when this module first resolves a name; others come from entry
points (groups ``keel.data_sources`` and ``keel.data_sinks``, name = type string, value =
``module:Class``) or from modules listed under ``plugins:`` that call
:func:`register_source` / :func:`register_sink`. ``dbms.<connection>`` resolves to the
``dbms`` type, bound to the named connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from keel.data.base import DataSink, DataSource
from keel.errors import ConfigError

SOURCE_GROUP = "keel.data_sources"
SINK_GROUP = "keel.data_sinks"
BUILTIN_MODULES = ("keel.data.files", "keel.data.sql")

S = TypeVar("S", bound=type[DataSource])
K = TypeVar("K", bound=type[DataSink])

_sources: dict[str, type[DataSource]] = {}
_sinks: dict[str, type[DataSink]] = {}
_lock = threading.Lock()
_loaded_builtins = False
_loaded_groups: set[str] = set()


def register_source(*types: str) -> Callable[[S], S]:
    """Class decorator: serve the given ``type:`` strings with this data source class."""

    def decorate(cls: S) -> S:
        for name in types:
            _sources[name] = cls
        return cls

    return decorate


def register_sink(*types: str) -> Callable[[K], K]:
    """Class decorator: serve the given ``type:`` strings with this data sink class."""

    def decorate(cls: K) -> K:
        for name in types:
            _sinks[name] = cls
        return cls

    return decorate


def source_type(type_name: str) -> type[DataSource]:
    """The data source class serving ``type_name``."""
    return _lookup(type_name, _sources, SOURCE_GROUP, "data source")  # type: ignore[return-value]


def sink_type(type_name: str) -> type[DataSink]:
    """The data sink class serving ``type_name``."""
    return _lookup(type_name, _sinks, SINK_GROUP, "data sink")  # type: ignore[return-value]


def known_source_types() -> list[str]:
    _load_builtins()
    _load_entry_points(SOURCE_GROUP, _sources)
    return sorted(_sources)


def known_sink_types() -> list[str]:
    _load_builtins()
    _load_entry_points(SINK_GROUP, _sinks)
    return sorted(_sinks)


def registry_key(type_name: str) -> str:
    """``dbms.warehouse`` is served by the ``dbms`` type; everything else by itself.

    A connection whose ``type`` is not ``sql`` or ``oracle`` (``dbms: {bda: {type: impala}}``)
    is served by the plugin registered as ``dbms.impala`` (see :meth:`DataCatalog._build`).
    """
    return "dbms" if type_name.startswith("dbms.") else type_name


def _lookup(type_name: str, table: dict[str, type], group: str, kind: str) -> type:
    _load_builtins()
    # a plugin may serve one kind of connection (``dbms.impala``): the exact name comes first
    key = type_name if type_name in table else registry_key(type_name)
    found = table.get(key)
    if found is None:
        _load_entry_points(group, table)
        key = type_name if type_name in table else registry_key(type_name)
        found = table.get(key)
    if found is None:
        known = ", ".join(_display(sorted(table)))
        raise ConfigError(
            f"unknown {kind} type {type_name!r}; known types: {known} "
            "(others come from plugins: or the keel.data_sources/keel.data_sinks entry points)"
        )
    return found


def _display(names: list[str]) -> list[str]:
    return ["dbms.<connection>" if n == "dbms" else n for n in names]


def _load_builtins() -> None:
    global _loaded_builtins
    if _loaded_builtins:
        return
    import importlib

    with _lock:
        if not _loaded_builtins:
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            _loaded_builtins = True


def _load_entry_points(group: str, table: dict[str, type]) -> None:
    if group in _loaded_groups:
        return
    from importlib.metadata import entry_points

    with _lock:
        if group in _loaded_groups:
            return
        for entry in entry_points(group=group):
            if entry.name in table:
                continue  # registered already (built-in, or a plugin imported first)
            try:
                table[entry.name] = entry.load()
            except Exception as exc:  # a broken plugin must say which one
                raise ConfigError(
                    f"entry point {entry.name} = {entry.value} ({group}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        _loaded_groups.add(group)


def refresh_entry_points() -> None:
    """Forget which entry points were read (after installing a plugin in a live process)."""
    with _lock:
        _loaded_groups.clear()
