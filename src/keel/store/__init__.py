"""The metadata store: schema, migrations, queries, and the backends that keep keel's records.

``open_store(url)`` picks the backend for a URL; every backend implements
:class:`keel.store.base.MetadataStore`.
"""

from __future__ import annotations

from keel.store.base import MetadataStore


def open_store(url: str, token: str | None = None) -> MetadataStore:
    """The metadata store at ``url``: a folder, ``sqlite:///…`` or ``postgresql://…`` (SQL),
    or ``http(s)://host:port`` (a keel platform server, called with ``token``)."""
    from keel.store.http import HttpStore, is_http_url

    if is_http_url(url):
        return HttpStore(url, token=token)
    from keel.store.sql import SqlStore

    return SqlStore(url)


__all__ = ["MetadataStore", "open_store"]
