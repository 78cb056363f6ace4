"""Routes of the model registry: registered models, their versions, tags, metrics and
aliases.

Model names may hold ``/``, so a name is the last part of its path (``{name:path}``); a
version is found at ``/model-versions/<model name>/<ref>``, where ``ref`` (a number,
``latest``, an alias or a label) never holds ``/``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import Field

from keel.entities import ArtifactFile, ModelVersion, RegisteredModel
from keel.errors import NotFound
from keel.server.api.codec import KeelJSON, no_content, reply, returns, schema_of
from keel.server.api.common import (
    PROJECT_HELP,
    Body,
    Find,
    ProjectQuery,
    TagsBody,
    find_params,
    metadata,
)
from keel.server.deps import require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["models"], default_response_class=KeelJSON)


class ModelBody(Body):
    """A registered model to create."""

    project: str = Field(description=PROJECT_HELP)
    name: str = Field(description="unique in the project", examples=["iris-classifier"])
    tags: dict[str, Any] | None = Field(None, description="tag key → any JSON value")
    description: str = ""


class ModelRefBody(Body):
    """A registered model to get, or create if missing."""

    project: str = Field(description=PROJECT_HELP)
    name: str


class VersionBody(Body):
    """A model version to register: its files are given here (recorded on the run in the
    same transaction) or were recorded on the run before."""

    project: str = Field(description=PROJECT_HELP)
    model: str = Field(description="the registered model's name (created if missing)")
    run_id: str | None = Field(description="the run whose artifact this version is")
    path_in_run: str = Field(description="where in the run the artifact is")
    content_hash: str = Field(description="keel.hashing.hash_path of the artifact")
    label: str | None = Field(None, description="your own name for it, e.g. 1.2.0")
    description: str = ""
    tags: dict[str, Any] | None = None
    library_versions: dict[str, str] | None = Field(None, description="package → version")
    author: str = ""
    allow_duplication: bool = Field(
        False, description="register even if a version has identical content"
    )
    files: list[ArtifactFile] | None = Field(
        None,
        description="the version's files at path_in_run (their blobs uploaded first): "
        "recorded with the version in one transaction, replacing other files left there",
    )


class VersionUpdate(Body):
    """Tags to set and metrics to merge into a model version (newer values win)."""

    tags: dict[str, Any] | None = None
    metrics: dict[str, float] | None = Field(
        None, description="metric → a number, or 'NaN', 'Infinity' or '-Infinity'"
    )


class RenameBody(Body):
    """A registered model's new name."""

    new_name: str = Field(description="unique in the project")


class AliasBody(Body):
    """The version an alias points at."""

    version: int = Field(ge=1)


@router.post(
    "/models",
    dependencies=[Depends(require("editor"))],
    responses=returns(RegisteredModel, status=201),
    status_code=201,
    summary="Create a registered model",
)
def create_model(body: ModelBody, request: Request) -> KeelJSON:
    """Register a model name; 409 if it exists in the project."""
    store = metadata(request)
    return reply(store.create_model(body.project, body.name, body.tags, body.description), 201)


@router.post(
    "/models/get-or-create",
    dependencies=[Depends(require("editor"))],
    responses=returns(RegisteredModel),
    summary="Get or create a registered model",
)
def get_or_create_model(body: ModelRefBody, request: Request) -> KeelJSON:
    return reply(metadata(request).get_or_create_model(body.project, body.name))


@router.get(
    "/models",
    dependencies=[Depends(require("viewer"))],
    responses=returns(RegisteredModel, many=True),
    summary="Find registered models",
)
def find_models(request: Request, find: Find = Depends(find_params)) -> KeelJSON:
    found = metadata(request).find_models(
        find.project, find.query, find.sort, find.limit, find.offset
    )
    return reply(found)


@router.put(
    "/models/{name:path}/aliases/{alias}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Point an alias at a version",
)
def set_alias(
    name: str, alias: str, body: AliasBody, project: ProjectQuery, request: Request
) -> Response:
    """Point ``alias`` (e.g. ``production``) at a version, moving it from another one."""
    metadata(request).set_alias(project, name, alias, body.version)
    return no_content()


@router.delete(
    "/models/{name:path}/aliases/{alias}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Delete an alias",
)
def delete_alias(name: str, alias: str, project: ProjectQuery, request: Request) -> Response:
    metadata(request).delete_alias(project, name, alias)
    return no_content()


@router.get(
    "/models/{name:path}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(RegisteredModel),
    summary="Get a registered model",
)
def get_model(name: str, project: ProjectQuery, request: Request) -> KeelJSON:
    return reply(metadata(request).get_model(project, name))


@router.patch(
    "/models/{name:path}",
    dependencies=[Depends(require("editor"))],
    responses=returns(RegisteredModel),
    summary="Set tags of a registered model",
)
def set_model_tags(name: str, body: TagsBody, project: ProjectQuery, request: Request) -> KeelJSON:
    store = metadata(request)
    store.set_model_tags(project, name, body.tags)
    return reply(store.get_model(project, name))


@router.post(
    "/models/{name:path}/rename",
    dependencies=[Depends(require("editor"))],
    responses=returns(RegisteredModel),
    summary="Rename a registered model",
)
def rename_model(name: str, body: RenameBody, project: ProjectQuery, request: Request) -> KeelJSON:
    """Give a model a new name (its versions, tags and aliases go with it); 409 if a model
    has that name."""
    return reply(metadata(request).rename_model(project, name, body.new_name))


@router.delete(
    "/models/{name:path}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Delete a registered model and its versions",
)
def delete_model(name: str, project: ProjectQuery, request: Request) -> Response:
    """Delete a model, its versions, tags and aliases (the files stay their runs'); 409 if a
    version served invocations."""
    metadata(request).delete_model(project, name)
    return no_content()


# --- versions --------------------------------------------------------------------------------

CREATED_SCHEMA = {
    "type": "object",
    "properties": {
        "version": schema_of(ModelVersion),
        "created": {"type": "boolean", "description": "false: identical content existed"},
    },
}


@router.post(
    "/model-versions",
    dependencies=[Depends(require("editor"))],
    responses={
        **returns(schema=CREATED_SCHEMA, status=201, description="registered"),
        **returns(schema=CREATED_SCHEMA, description="a version with identical content"),
    },
    summary="Register a model version",
)
def create_model_version(body: VersionBody, request: Request) -> KeelJSON:
    """Register the next version (numbered per model). Identical content returns the
    existing version (200) unless ``allow_duplication``."""
    fields = body.model_dump(exclude={"project", "model", "files"})
    version, created = metadata(request).register_model_version(
        body.project, body.model, files=body.files or [], **fields
    )
    return reply({"version": version, "created": created}, 201 if created else 200)


@router.get(
    "/model-versions",
    dependencies=[Depends(require("viewer"))],
    responses=returns(ModelVersion, many=True),
    summary="Find model versions",
)
def find_model_versions(request: Request, find: Find = Depends(find_params)) -> KeelJSON:
    """Versions matching a query over their attributes, ``tags.*``, ``model.*``, ``run.*``
    and ``metrics.*`` (of the source run)."""
    found = metadata(request).find_model_versions(
        find.project, find.query, find.sort, find.limit, find.offset
    )
    return reply(found)


@router.get(
    "/model-versions/{model:path}/{ref}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(ModelVersion),
    summary="Get a model version by number, 'latest', alias or label",
)
def get_model_version(model: str, ref: str, project: ProjectQuery, request: Request) -> KeelJSON:
    return reply(metadata(request).get_model_version(project, model, ref))


@router.delete(
    "/model-versions/{model:path}/{version}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Delete a model version",
)
def delete_model_version(
    model: str, version: int, project: ProjectQuery, request: Request
) -> Response:
    """Delete a version, its tags and the aliases pointing at it (its number is not given
    again; its files stay its run's); 409 if it served invocations."""
    metadata(request).delete_model_version(project, model, version)
    return no_content()


@router.patch(
    "/model-versions/{version_id}",
    dependencies=[Depends(require("editor"))],
    responses=returns(ModelVersion),
    summary="Set tags or merge metrics of a model version",
)
def update_model_version(version_id: str, body: VersionUpdate, request: Request) -> KeelJSON:
    store = metadata(request)
    if body.tags is not None:
        store.set_model_version_tags(version_id, body.tags)
    if body.metrics is not None:
        return reply(store.update_model_version_metrics(version_id, body.metrics))
    found = store.find_model_versions(None, {"id": version_id}, limit=1)
    if not found:
        raise NotFound(f"model version {version_id} not found")
    return reply(found[0])
