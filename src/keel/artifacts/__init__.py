"""Artifact bytes: content-addressed, immutable blobs, and the local cache of them.

This package owns where artifact bytes live and how they are moved: the
:class:`ArtifactStore` interface, its local-folder and fsspec implementations, the registry
that opens a store from a URL, and the write-protected :class:`ArtifactCache`. Which logical
path of which run or model version maps to which blob is the metadata store's business.

``import keel.artifacts`` does not import fsspec: it is loaded when a remote store is opened.

Example:
    >>> store = open_artifact_store("/tmp/keel-artifacts")  # doctest: +SKIP
    >>> info = store.put_bytes(b"hello")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from keel.artifacts.base import ArtifactStore, BlobInfo
from keel.artifacts.cache import ArtifactCache
from keel.artifacts.local import LocalArtifactStore
from keel.artifacts.remote import FsspecArtifactStore
from keel.errors import InvalidInput

__all__ = [
    "ArtifactCache",
    "ArtifactStore",
    "BlobInfo",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "open_artifact_store",
    "register_artifact_store",
]

StoreFactory = Callable[[str, dict[str, Any]], ArtifactStore]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_FACTORIES: dict[str, StoreFactory] = {}


def _keel_server(url: str, options: dict[str, Any], token: str | None) -> ArtifactStore:
    from keel.artifacts.http import HttpArtifactStore

    return HttpArtifactStore(url, token)


def _mlflow_server(url: str, options: dict[str, Any], token: str | None) -> ArtifactStore:
    from keel.artifacts.mlflow import MlflowArtifactStore

    return MlflowArtifactStore(url, token, storage_options=options)


#: built-in stores behind a server: they take the client's API token (and import their
#: HTTP client only when opened)
SERVER_STORES: dict[str, Callable[[str, dict[str, Any], str | None], ArtifactStore]] = {
    "http": _keel_server,  # a keel platform server
    "https": _keel_server,
    "mlflow+http": _mlflow_server,  # the artifact proxy of an MLflow tracking server
    "mlflow+https": _mlflow_server,
}


def register_artifact_store(scheme: str, factory: StoreFactory) -> None:
    """Open URLs with this scheme through ``factory`` (replacing any earlier registration).

    Args:
        scheme: the URL scheme, e.g. ``"myblob"`` for ``myblob://…`` (case-insensitive).
        factory: ``factory(url, storage_options) -> ArtifactStore``.

    Raises:
        InvalidInput: ``scheme`` is not a URL scheme, or ``factory`` is not callable.
    """
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(f"{scheme}://"):
        raise InvalidInput(f"not a URL scheme: {scheme!r}")
    if not callable(factory):
        raise InvalidInput(f"the factory for {scheme!r} must be callable")
    _FACTORIES[scheme.lower()] = factory


def open_artifact_store(
    url: str, storage_options: dict[str, Any] | None = None, token: str | None = None
) -> ArtifactStore:
    """The artifact store at ``url``.

    A registered factory handles its scheme. Otherwise ``http(s)://`` is a keel platform
    server (:class:`~keel.artifacts.http.HttpArtifactStore`), ``mlflow+http(s)://`` the
    artifact proxy of an MLflow server (:class:`~keel.artifacts.mlflow.MlflowArtifactStore`),
    both given ``token``; a path without scheme or a ``file://`` URL is a
    :class:`LocalArtifactStore` (``storage_options`` are ignored), and any other URL a
    :class:`FsspecArtifactStore`, so every fsspec protocol works.

    Args:
        url: a folder or a URL, e.g. ``./artifacts``, ``s3://bucket/prefix``.
        storage_options: options for the remote filesystem (credentials, endpoint…).
        token: the API token of a server-backed store.

    Returns:
        The store (no I/O happens until it is used).

    Raises:
        InvalidInput: the URL is empty or its protocol unknown.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"artifact store URL must be a non-empty string, got {url!r}")
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else None
    if scheme is not None and scheme in _FACTORIES:
        return _FACTORIES[scheme](url, dict(storage_options or {}))
    if scheme is not None and scheme in SERVER_STORES:
        return SERVER_STORES[scheme](url, dict(storage_options or {}), token)
    if scheme is None or scheme == "file":
        return LocalArtifactStore(url)
    return FsspecArtifactStore(url, storage_options)
