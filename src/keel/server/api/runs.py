"""Routes of runs: create, get, find, update (status, end, name, delete/restore),
children, the batched log of params, metrics and tags, and metric histories."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from keel.entities import RUN_KINDS, RUN_STATUSES, Metric, Run
from keel.server.api.codec import KeelJSON, metric_points, no_content, reply, returns
from keel.server.api.common import Body, Find, find_params, metadata
from keel.server.deps import require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["runs"], default_response_class=KeelJSON)

NUMBER_HELP = "a number, or 'NaN', 'Infinity' or '-Infinity'"


class RunBody(Body):
    """A run to create in an experiment."""

    experiment_id: str = Field(description="id of the experiment it belongs to")
    name: str | None = Field(None, description="free text; default '<kind>-<id prefix>'")
    kind: str = Field("tracking", description="one of " + ", ".join(RUN_KINDS))
    status: str = Field("running", description="one of " + ", ".join(RUN_STATUSES))
    parent_id: str | None = Field(None, description="id of the parent run (same experiment)")
    tags: dict[str, Any] | None = Field(None, description="tag key → any JSON value")
    author: str = Field("", description="who ran it")
    environment: dict[str, Any] | None = Field(
        None, description="python, platform, host, installed packages…"
    )
    start_time: int | None = Field(None, description="ms since the epoch (default: now)")
    run_id: str | None = Field(None, description="an id to use (32 hex characters)")


class RunUpdate(Body):
    """Fields of a run to change; the others are left alone."""

    status: str | None = Field(None, description="one of " + ", ".join(RUN_STATUSES))
    end_time: int | None = Field(None, description="ms since the epoch")
    name: str | None = None
    failure: str | None = Field(None, description="the traceback of a failed run")
    lifecycle: Literal["active", "deleted"] | None = Field(
        None, description="'deleted' hides the run (keel gc purges it); 'active' restores it"
    )


class MetricPoint(Body):
    """One point of a metric's history."""

    key: str
    value: float = Field(description=NUMBER_HELP)
    step: int = 0
    timestamp: int = Field(0, description="ms since the epoch")


class BatchBody(Body):
    """Params (write-once), metric points (appended) and tags (overwritten), in one
    transaction."""

    params: dict[str, Any] | None = None
    metrics: list[MetricPoint] = Field(default_factory=list)
    tags: dict[str, Any] | None = None


@router.post(
    "/runs",
    dependencies=[Depends(require("editor"))],
    responses=returns(Run, status=201),
    status_code=201,
    summary="Create a run",
)
def create_run(body: RunBody, request: Request) -> KeelJSON:
    fields = body.model_dump(exclude={"experiment_id"})
    return reply(metadata(request).create_run(body.experiment_id, **fields), 201)


@router.get(
    "/runs",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Run, many=True),
    summary="Find runs",
)
def find_runs(
    request: Request,
    find: Find = Depends(find_params),
    include_deleted: bool = Query(False, description="also runs marked deleted"),
) -> KeelJSON:
    """Runs matching a query over attributes, ``params.*``, ``metrics.*`` (latest value),
    ``tags.*`` and ``exp.*``."""
    found = metadata(request).find_runs(
        find.project, find.query, find.sort, find.limit, find.offset, include_deleted
    )
    return reply(found)


@router.get(
    "/runs/{run_id}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Run),
    summary="Get a run",
)
def get_run(run_id: str, request: Request) -> KeelJSON:
    return reply(metadata(request).get_run(run_id))


@router.patch(
    "/runs/{run_id}",
    dependencies=[Depends(require("editor"))],
    responses=returns(Run),
    summary="Update a run (status, end, name, delete/restore)",
)
def update_run(run_id: str, body: RunUpdate, request: Request) -> KeelJSON:
    fields = body.model_dump(exclude_none=True)
    return reply(metadata(request).update_run(run_id, **fields))


@router.get(
    "/runs/{run_id}/children",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Run, many=True),
    summary="Child runs of a run",
)
def children(run_id: str, request: Request) -> KeelJSON:
    return reply(metadata(request).children(run_id))


@router.post(
    "/runs/{run_id}/log-batch",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Log params, metrics and tags",
)
def log_batch(run_id: str, body: BatchBody, request: Request) -> Response:
    """Write params (a different value for a logged key is a 409), append metric points and
    set tags, all or nothing."""
    points = [Metric(m.key, m.value, m.step, m.timestamp) for m in body.metrics]
    metadata(request).log_batch(run_id, params=body.params, metrics=points, tags=body.tags)
    return no_content()


@router.get(
    "/runs/{run_id}/metrics/{key:path}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Metric, many=True),
    summary="History of a metric",
)
def metric_history(run_id: str, key: str, request: Request) -> Response:
    """Every point of the metric, by step then time."""
    return metric_points(key, metadata(request).get_metric_arrays(run_id, key))
