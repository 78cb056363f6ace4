"""Routes of monitoring: a model version's drift from its training data, and its reference
profile. Thin callers of :func:`keel.lifecycle.monitoring.check_version` (judged with the
``monitoring:`` settings stored with the reference profile: the server has no keel.yml).

Registered before the model routes: ``/model-versions/{model}/{ref}`` takes any path as the
model name, so ``…/drift`` must be matched first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Query, Request

from keel.server.api.codec import KeelJSON
from keel.server.api.common import ProjectQuery
from keel.server.deps import get_client, require
from keel.server.guard import GuardedRoute

if TYPE_CHECKING:
    from keel.tracking.client import Client

router = APIRouter(route_class=GuardedRoute, tags=["monitoring"], default_response_class=KeelJSON)

DURATION_HELP = "a duration: a number and a unit (ms, s, m, h, d, w), e.g. 7d, 12h, 30m"


def _client(request: Request, project: str) -> Client:
    client = get_client(request)
    return client if client.project == project else client.copy(update={"project": project})


@router.get(
    "/model-versions/{model:path}/{ref}/drift",
    dependencies=[Depends(require("viewer"))],
    summary="Drift of a model version's live inputs and outputs from its training data",
)
def version_drift(
    model: str,
    ref: str,
    project: ProjectQuery,
    request: Request,
    since: str = Query("7d", max_length=32, description=f"how far back; {DURATION_HELP}"),
    window: str = Query("1d", max_length=32, description=f"one timeline row per; {DURATION_HELP}"),
    histograms: bool = Query(False, description="add reference-vs-live shares per column"),
    bins: int = Query(20, ge=2, le=200, description="histogram bins of number columns"),
) -> KeelJSON:
    """The version's live profiles of the last ``since`` compared with its reference
    profile: per column the test, its statistic, threshold and verdict; the dataset's verdict
    (it drifts when ``drift_share`` of the features drift); and per ``window`` the drift
    share, record volume, error rate and latency. 404 when the version has no reference
    profile; 400 when the period holds more window profiles than one check reads."""
    from keel.lifecycle.monitoring import check_version

    client = _client(request, project)
    check = check_version(client, (model, ref), since=since, window=window)
    return KeelJSON(check.to_dict(histograms=histograms, bins=bins))


@router.get(
    "/model-versions/{model:path}/{ref}/reference-profile",
    dependencies=[Depends(require("viewer"))],
    summary="The reference profile of a model version (its training data and outputs)",
)
def reference_profile(model: str, ref: str, project: ProjectQuery, request: Request) -> KeelJSON:
    """Per input column and output field: kind, count, missing share, distinct values,
    moments, quantiles and a histogram (numbers) or the most frequent values (categories)."""
    from keel.monitoring.storage import load_reference

    client = _client(request, project)
    mv = client.get_model_version((model, ref))
    return KeelJSON(load_reference(client, mv).summary())
