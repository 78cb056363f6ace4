"""The registry of metadata store backends, looked up by the scheme of the store URL.

Built-in backends:

=====================================  =========================================
URL                                    backend
=====================================  =========================================
a folder, ``sqlite:///FILE``           :class:`keel.store.sql.SqlStore` (embedded)
``postgresql://…`` (``postgres://``)   :class:`keel.store.sql.SqlStore`
``http(s)://HOST:PORT``                :class:`keel.store.http.HttpStore` (a keel server)
``mlflow+http(s)://HOST:PORT``         :class:`keel.store.mlflow.MlflowStore` (an MLflow
                                       tracking server)
=====================================  =========================================

Other backends register with :func:`register_store` or the ``keel.stores`` entry point group
(name = URL scheme, value = ``module:factory``), read on the first lookup of a scheme no
registration serves. A factory is called as ``factory(url, token)`` and returns a
:class:`~keel.store.base.MetadataStore`; it must not do I/O (stores connect on first use).
A scheme with a driver part (``postgresql+psycopg``) falls back to its base (``postgresql``).
Built-ins are imported only when their scheme is asked for, so ``import keel`` stays light.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from keel.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from keel.store.base import MetadataStore

__all__ = [
    "ENTRY_POINT_GROUP",
    "StoreFactory",
    "known_schemes",
    "open_store",
    "register_store",
    "store_factory",
    "url_scheme",
]

ENTRY_POINT_GROUP = "keel.stores"
#: a folder path has no scheme; it names an embedded store
FOLDER = ""

StoreFactory = Callable[[str, "str | None"], "MetadataStore"]

#: built-in schemes → ``module:factory``, imported on first use
BUILTIN = {
    FOLDER: "keel.store.registry:_sql_store",
    "file": "keel.store.registry:_sql_store",
    "sqlite": "keel.store.registry:_sql_store",
    "postgresql": "keel.store.registry:_sql_store",
    "postgres": "keel.store.registry:_sql_store",
    "http": "keel.store.registry:_http_store",
    "https": "keel.store.registry:_http_store",
    "mlflow+http": "keel.store.registry:_mlflow_store",
    "mlflow+https": "keel.store.registry:_mlflow_store",
}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_registry: dict[str, StoreFactory] = {}
_lock = threading.Lock()
_entry_points_read = False


def url_scheme(url: str) -> str:
    """The lower-case scheme of a store URL (``""`` for a folder path)."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else FOLDER


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Open store URLs with this scheme through ``factory(url, token)``.

    Args:
        scheme: the URL scheme, e.g. ``"mystore"`` for ``mystore://…`` (case-insensitive).
        factory: returns the :class:`~keel.store.base.MetadataStore` for a URL.

    Raises:
        InvalidInput: ``scheme`` is not a URL scheme, or ``factory`` is not callable.
    """
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(f"{scheme}://"):
        raise InvalidInput(f"not a URL scheme: {scheme!r}")
    if not callable(factory):
        raise InvalidInput(f"the store factory for {scheme!r} must be callable")
    _registry[scheme.lower()] = factory


def store_factory(scheme: str) -> StoreFactory:
    """The factory serving ``scheme`` (a driver suffix ``a+b`` falls back to ``a``)."""
    scheme = scheme.lower()
    candidates = [scheme]
    if "+" in scheme:
        candidates.append(scheme.split("+", 1)[0])
    for pass_ in range(2):
        if pass_:
            _read_entry_points()
        for name in candidates:
            found = _registry.get(name)
            if found is None and name in BUILTIN:
                module, _, attr = BUILTIN[name].partition(":")
                found = _registry.setdefault(name, getattr(importlib.import_module(module), attr))
            if found is not None:
                return found
    known = ", ".join(f"{s}://" for s in known_schemes() if s)
    raise ConfigError(
        f"unsupported store URL scheme {scheme!r}: use a folder path or one of {known} "
        f"(others come from the {ENTRY_POINT_GROUP} entry points)"
    )


def known_schemes() -> list[str]:
    """Every scheme a store URL may use (``""``: a folder path)."""
    _read_entry_points()
    return sorted(set(_registry) | set(BUILTIN))


def open_store(url: str, token: str | None = None) -> MetadataStore:
    """The metadata store at ``url`` (no I/O happens until it is used).

    Args:
        url: a folder, ``sqlite:///…``, ``postgresql://…``, ``http(s)://…`` (a keel
            server), ``mlflow+http(s)://…`` (an MLflow server) or a registered scheme.
        token: the API token of a server backend (ignored by the SQL store).

    Raises:
        ConfigError: no backend serves the URL's scheme.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"the store URL must be a non-empty string, got {url!r}")
    return store_factory(url_scheme(url))(url, token)


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    from importlib.metadata import entry_points

    with _lock:
        if _entry_points_read:
            return
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            name = entry.name.lower()
            if name in _registry:
                continue  # registered already (built-in, or a plugin imported first)
            try:
                _registry[name] = entry.load()
            except Exception as exc:  # a broken plugin must say which one
                raise ConfigError(
                    f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) cannot be "
                    f"loaded: {type(exc).__name__}: {exc}"
                ) from None
        _entry_points_read = True


# --- the built-in factories (registered through the same table users extend) -------------


def _sql_store(url: str, token: str | None) -> MetadataStore:
    from keel.store.sql import SqlStore

    return SqlStore(url)


def _http_store(url: str, token: str | None) -> MetadataStore:
    from keel.store.http import HttpStore

    return HttpStore(url, token=token)


def _mlflow_store(url: str, token: str | None) -> MetadataStore:
    from keel.store.mlflow import MlflowStore

    return MlflowStore(url, token=token)
