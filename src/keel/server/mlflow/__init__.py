"""MLflow wire compatibility: the REST API an unmodified ``mlflow`` 3.x client uses.

Point MLflow's client at ``keel server`` (``mlflow.set_tracking_uri("http://host:8080")``,
``MLFLOW_TRACKING_TOKEN=keel_…`` or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``) and its
tracking and registry calls land in keel's store: an MLflow run is a keel run, a registered
model version a keel model version, an artifact a keel artifact. The routes are thin
translations into calls of keel's metadata store and artifact store; there is no second store.

Modules:

* :mod:`.protocol`: the error shape, request arguments, answers and the route class;
* :mod:`.auth`: keel users' passwords as HTTP Basic (bearer tokens are keel's own);
* :mod:`.records`: every mapping between MLflow's records and keel's (ids, statuses, where
  files live, logged models as runs);
* :mod:`.search`: MLflow's filter and ``order_by`` language → keel queries, page tokens;
* :mod:`.tracking`: experiments, runs, params, metrics, tags, batches, metric histories;
* :mod:`.logged_models`: MLflow 3's logged models;
* :mod:`.datasets`: MLflow's datasets and a run's inputs and outputs (``log-inputs``…);
* :mod:`.registry`: registered models, versions, tags, aliases, download URIs;
* :mod:`.artifacts`: the ``mlflow-artifacts`` proxy and ``server-info``.

Roles are those of ``/api/v1``: reading needs ``viewer``, writing ``editor`` (MLflow's
searches are POSTs but only read). Every route is served under ``/ajax-api/2.0`` too, where
MLflow's own UI calls it. Any other path under ``/api/2.0/``, ``/ajax-api/2.0/`` or
``/api/3.0/`` answers MLflow's ``ENDPOINT_NOT_FOUND``, so a client feature keel lacks fails
with a clear message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from keel.server.deps import require
from keel.server.mlflow import artifacts, datasets, logged_models, registry, tracking
from keel.server.mlflow.protocol import ENDPOINT_NOT_FOUND, MlflowError, new_router

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["PREFIX", "mount", "router"]

PREFIX = "/api/2.0"
AJAX_PREFIX = "/ajax-api/2.0"  # MLflow's UI calls the same routes here
V3_PREFIX = "/api/3.0"

_unknown = new_router()


async def _not_implemented(path: str, request: Request) -> Response:
    raise MlflowError(
        f"keel does not implement {request.method} {request.url.path} of MLflow's REST API",
        ENDPOINT_NOT_FOUND,
    )


_unknown.add_api_route(
    "/{path:path}",
    _not_implemented,
    methods=["GET"],
    dependencies=[Depends(require("viewer"))],
    include_in_schema=False,
    name="mlflow.not_implemented",
)
_unknown.add_api_route(
    "/{path:path}",
    _not_implemented,
    methods=["POST", "PUT", "PATCH", "DELETE"],
    dependencies=[Depends(require("editor"))],
    include_in_schema=False,
    name="mlflow.not_implemented_write",
)

#: every route under /api/2.0, paths relative to it
router = APIRouter()
for _module in (tracking, logged_models, datasets, registry, artifacts):
    router.include_router(_module.router)
router.include_router(_unknown)  # last: only paths nothing else answers
#: what /api/3.0 serves as a group: only the refusal (its few routes are the app's own)
v3_router = APIRouter()
v3_router.include_router(_unknown)


def mount(app: FastAPI) -> None:
    """Serve MLflow's REST API from ``app``.

    The routes under ``/api/2.0`` are mounted as one group: a request elsewhere pays one
    prefix check for all of them, not one check per route (this FastAPI tries routes one by
    one, ~7 µs each), and an MLflow call is not checked against keel's own ~100 routes.
    """
    # first: its paths (/get-artifact, /ajax-api/2.0/mlflow/upload-artifact…) lie outside the
    # mounts or inside /ajax-api/2.0, whose mount would otherwise answer them
    app.include_router(artifacts.app_router)
    app.mount(PREFIX, router, name="mlflow")
    app.mount(AJAX_PREFIX, router, name="mlflow_ajax")
    # after the routes of the app_router above (server-info): the rest of /api/3.0 is refused
    app.mount(V3_PREFIX, v3_router, name="mlflow_v3")
