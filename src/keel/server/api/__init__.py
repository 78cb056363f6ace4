"""The REST API under ``/api/v1``: one router per kind of record, each a thin caller of the
server's stores (the same :class:`~keel.store.base.MetadataStore` and
:class:`~keel.artifacts.ArtifactStore` the Python client uses). Every route declares the role
it needs (see :mod:`keel.server.deps`).

:class:`keel.store.http.HttpStore` and :class:`keel.artifacts.http.HttpArtifactStore` are
this API's clients: ``keel.Client("http://host:port", token=…)`` runs over it.
"""

from __future__ import annotations

from fastapi import APIRouter

from keel.server.api import (
    accounts,
    artifacts,
    datasets,
    experiments,
    invocations,
    jobs,
    models,
    monitoring,
    pipelines,
    runs,
)

router = APIRouter()
for _module in (
    experiments,
    runs,
    artifacts,
    monitoring,  # before models: /model-versions/{model:path}/{ref} would take …/drift
    models,
    datasets,
    invocations,
    accounts,
    pipelines,
    jobs,
):
    router.include_router(_module.router)
