"""Routes of invocation records: index a batch of prediction records (whose JSON-lines
file is uploaded as a blob first) and find a model version's records by time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from keel.entities import ArtifactFile, InvocationIndex
from keel.server.api.codec import KeelJSON, no_content, reply, returns
from keel.server.api.common import Body, metadata
from keel.server.deps import require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["invocations"], default_response_class=KeelJSON)


class InvocationBatch(Body):
    """A batch file of invocation records and where each record sits in it."""

    version_id: str = Field(description="id of the model version that answered")
    batch: ArtifactFile = Field(description="the JSON-lines file (path, sha256, size)")
    rows: list[InvocationIndex] = Field(description="one entry per record in the file")


@router.post(
    "/invocations",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Index a batch of invocation records",
)
def record_invocations(body: InvocationBatch, request: Request) -> Response:
    """Record the batch file as an artifact of the version and index its records, in one
    transaction (a retried batch is indexed once)."""
    metadata(request).record_invocations(body.version_id, body.batch, body.rows)
    return no_content()


@router.get(
    "/invocations",
    dependencies=[Depends(require("viewer"))],
    responses=returns(InvocationIndex, many=True),
    summary="Find invocation records of a model version",
)
def find_invocations(
    request: Request,
    version_id: str = Query(description="id of the model version"),
    since: int | None = Query(None, description="from this time (ms since the epoch, UTC)"),
    until: int | None = Query(None, description="up to this time (inclusive)"),
    limit: int | None = Query(None, ge=0, description="at most this many, newest first"),
) -> KeelJSON:
    return reply(metadata(request).find_invocations(version_id, since, until, limit))
