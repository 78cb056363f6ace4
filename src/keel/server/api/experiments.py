"""Routes of projects and experiments: create, get, get-or-create, find, tag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from keel.entities import Experiment, Project
from keel.server.api.codec import KeelJSON, reply, returns
from keel.server.api.common import PROJECT_HELP, Body, Find, TagsBody, find_params, metadata
from keel.server.deps import require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["experiments"], default_response_class=KeelJSON)


class ExperimentBody(Body):
    """An experiment to create: a named group of runs in a project."""

    project: str = Field(description=PROJECT_HELP)
    name: str = Field(description="unique in the project", examples=["iris"])
    tags: dict[str, Any] | None = Field(None, description="tag key → any JSON value")


@router.put(
    "/projects/{name:path}",
    dependencies=[Depends(require("editor"))],
    responses=returns(Project),
    summary="Get or create a project",
)
def get_or_create_project(name: str, request: Request) -> KeelJSON:
    """The project with this name, created if missing."""
    return reply(metadata(request).get_or_create_project(name))


@router.post(
    "/experiments",
    dependencies=[Depends(require("editor"))],
    responses=returns(Experiment, status=201),
    status_code=201,
    summary="Create an experiment",
)
def create_experiment(body: ExperimentBody, request: Request) -> KeelJSON:
    """Create an experiment; 409 if the name is taken in the project."""
    return reply(metadata(request).create_experiment(body.project, body.name, body.tags), 201)


@router.post(
    "/experiments/get-or-create",
    dependencies=[Depends(require("editor"))],
    responses=returns(Experiment),
    summary="Get or create an experiment",
)
def get_or_create_experiment(body: ExperimentBody, request: Request) -> KeelJSON:
    """The experiment with this name, created (with ``tags``) if missing."""
    found = metadata(request).get_or_create_experiment(body.project, body.name, body.tags)
    return reply(found)


@router.get(
    "/experiments",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Experiment, many=True),
    summary="Find experiments",
)
def find_experiments(request: Request, find: Find = Depends(find_params)) -> KeelJSON:
    """Experiments matching a query over ``name``, ``lifecycle``, times and ``tags.*``."""
    found = metadata(request).find_experiments(
        find.project, find.query, find.sort, find.limit, find.offset
    )
    return reply(found)


@router.get(
    "/experiments/{experiment_id}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(Experiment),
    summary="Get an experiment",
)
def get_experiment(experiment_id: str, request: Request) -> KeelJSON:
    return reply(metadata(request).get_experiment(experiment_id))


@router.patch(
    "/experiments/{experiment_id}",
    dependencies=[Depends(require("editor"))],
    responses=returns(Experiment),
    summary="Set tags of an experiment",
)
def set_experiment_tags(experiment_id: str, body: TagsBody, request: Request) -> KeelJSON:
    """Merge ``tags`` into the experiment's tags."""
    store = metadata(request)
    store.set_experiment_tags(experiment_id, body.tags)
    return reply(store.get_experiment(experiment_id))
