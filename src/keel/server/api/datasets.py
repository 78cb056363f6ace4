"""Routes of datasets: register a version (by content), get, find, and the lineage between
datasets and the runs that made or used them.

Dataset names may hold ``/``: a version is found at ``/dataset-versions/<name>/<version>``,
where ``version`` (a number or ``latest``) never holds ``/``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import Field

from keel.entities import ArtifactFile, Dataset
from keel.server.api.codec import KeelJSON, no_content, reply, returns, schema_of
from keel.server.api.common import PROJECT_HELP, Body, Find, ProjectQuery, find_params, metadata
from keel.server.deps import require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["datasets"], default_response_class=KeelJSON)


class DatasetBody(Body):
    """A dataset version to register with its files (their blobs are uploaded first)."""

    project: str = Field(description=PROJECT_HELP)
    name: str = Field(examples=["iris"])
    content_hash: str = Field(description="keel.hashing.hash_path of the files")
    files: list[ArtifactFile] = Field(description="path, sha256 and size of each file")
    run_id: str | None = Field(None, description="the run that produced it")
    description: str = ""
    tags: dict[str, Any] | None = None
    author: str = ""
    allow_duplication: bool = Field(
        False, description="register even if a version has identical content"
    )


class LinkBody(Body):
    """How a run relates to a dataset."""

    role: Literal["input", "output"] = "input"


CREATED_SCHEMA = {
    "type": "object",
    "properties": {
        "dataset": schema_of(Dataset),
        "created": {"type": "boolean", "description": "false: identical content existed"},
    },
}
USAGE_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"run_id": {"type": "string"}, "role": {"enum": ["input", "output"]}},
    },
}


@router.post(
    "/datasets",
    dependencies=[Depends(require("editor"))],
    responses={
        **returns(schema=CREATED_SCHEMA, status=201, description="registered"),
        **returns(schema=CREATED_SCHEMA, description="a version with identical content"),
    },
    summary="Register a dataset version",
)
def create_dataset(body: DatasetBody, request: Request) -> KeelJSON:
    """Register the next version of a dataset; identical content returns the existing
    version (200, linked to ``run_id``) unless ``allow_duplication``."""
    fields = body.model_dump(exclude={"project", "name", "files"})
    dataset, created = metadata(request).create_dataset(
        body.project, body.name, files=body.files, **fields
    )
    return reply({"dataset": dataset, "created": created}, 201 if created else 200)


@router.get(
    "/datasets",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Dataset, many=True),
    summary="Find datasets",
)
def find_datasets(request: Request, find: Find = Depends(find_params)) -> KeelJSON:
    found = metadata(request).find_datasets(
        find.project, find.query, find.sort, find.limit, find.offset
    )
    return reply(found)


@router.get(
    "/datasets/{dataset_id}/runs",
    dependencies=[Depends(require("viewer"))],
    responses=returns(schema=USAGE_SCHEMA, description="the runs that made or used it"),
    summary="Lineage of a dataset",
)
def dataset_runs(dataset_id: str, request: Request) -> KeelJSON:
    found = metadata(request).dataset_runs(dataset_id)
    return reply([{"run_id": run, "role": role} for run, role in found])


@router.put(
    "/datasets/{dataset_id}/runs/{run_id}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Link a dataset to a run",
)
def link_dataset(dataset_id: str, run_id: str, body: LinkBody, request: Request) -> Response:
    """Record that the run used (input) or produced (output) the dataset."""
    metadata(request).link_dataset(dataset_id, run_id, body.role)
    return no_content()


@router.get(
    "/dataset-versions/{name:path}/{version}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Dataset),
    summary="Get a dataset version (a number or 'latest')",
)
def get_dataset(name: str, version: str, project: ProjectQuery, request: Request) -> KeelJSON:
    return reply(metadata(request).get_dataset(project, name, version))
