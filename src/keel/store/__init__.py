"""The metadata store: schema, migrations, queries, and the backends that keep keel's records.

``open_store(url)`` picks the backend for a URL by its scheme, through the registry in
:mod:`keel.store.registry` (folder, ``sqlite``, ``postgresql``: SQL; ``http(s)``: a keel
server; ``mlflow+http(s)``: an MLflow tracking server; others by ``register_store`` or the
``keel.stores`` entry points). Every backend implements :class:`keel.store.base.MetadataStore`.
"""

from __future__ import annotations

from keel.store.base import MetadataStore
from keel.store.registry import open_store, register_store

__all__ = ["MetadataStore", "open_store", "register_store"]
