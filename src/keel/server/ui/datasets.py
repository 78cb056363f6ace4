"""The dataset pages: every dataset of the project, one dataset's versions, one version.

Routes, each under ``/projects/{project}``: ``GET /datasets``, ``GET /datasets/{name}``,
``GET /datasets/{name}/v/{version}`` (its files, content hash and the runs that made or
read it) and ``GET /datasets/{name}/v/{version}/files/{path}`` (download one file).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keel.errors import NotFound, NotInProject
from keel.server.guard import GuardedRoute
from keel.server.ui import missing_page, render
from keel.server.ui.common import PROJECTS, VIEWER, blob_response, project_client
from keel.server.ui.formatting import path_part, project_url

router = APIRouter(
    route_class=GuardedRoute,
    prefix=PROJECTS + "/{project}",
    include_in_schema=False,
    dependencies=[VIEWER],
)


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request, project: str) -> Response:
    client = project_client(request, project)
    # Newest version first, so the first row of each name is its latest version.
    found = client.find_datasets(sort=[("name", 1), ("version", -1)], limit=2000)
    latest: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for ds in found:
        latest.setdefault(ds.name, ds)
        counts[ds.name] = counts.get(ds.name, 0) + 1
    return render(
        request,
        "datasets.html",
        datasets=list(latest.values()),
        counts=counts,
        project=client.project,
    )


@router.get("/datasets/{name:path}/v/{version:int}/files/{path:path}")
def download(request: Request, project: str, name: str, version: int, path: str) -> Response:
    """One file of a dataset version, as an attachment."""
    client = project_client(request, project)
    ds = client.get_dataset(name, version)
    found = [f for f in client.list_dataset_files(ds) if f.path == path]
    if not found:
        raise NotFound(f"dataset {name} version {version} has no file {path!r}")
    return blob_response(client.artifact_store, found[0])


@router.get("/datasets/{name:path}/v/{version:int}", response_class=HTMLResponse)
def dataset_version(request: Request, project: str, name: str, version: int) -> Response:
    client = project_client(request, project)
    try:
        ds = client.get_dataset(name, version)
    except NotInProject as exc:
        return _missing(
            request, str(exc), exc.elsewhere, f"/datasets/{path_part(name)}/v/{version}"
        )
    runs = []
    for run_id, role in ds.runs:
        try:
            runs.append((role, client.get_run(run_id)))
        except NotFound:  # purged since: the link is history
            continue
    producer = None
    if ds.run_id:
        try:
            producer = client.get_run(ds.run_id)
        except NotFound:
            producer = None
    return render(
        request,
        "dataset.html",
        ds=ds,
        files=client.list_dataset_files(ds),
        runs=runs,
        producer=producer,
        project=client.project,
    )


@router.get("/datasets/{name:path}", response_class=HTMLResponse)
def dataset(request: Request, project: str, name: str) -> Response:
    client = project_client(request, project)
    versions = client.find_datasets({"name": name}, sort=[("version", -1)], limit=500)
    if not versions:
        holders = [p for p in client.projects_with("dataset", name) if p != client.project]
        message = f"no dataset named {name!r} in project {client.project!r}"
        if holders:
            where = "project" if len(holders) == 1 else "projects"
            message += f"; it is in {where} {', '.join(map(repr, holders))}"
        return _missing(request, message, holders, f"/datasets/{path_part(name)}")
    return render(
        request,
        "dataset_versions.html",
        dataset_name=name,
        versions=versions,
        project=client.project,
    )


def _missing(request: Request, message: str, holders: Sequence[str], path: str) -> Response:
    """The 404 page of a dataset this project lacks, linking the same page where it is."""
    return missing_page(request, message, [(p, project_url(p, path)) for p in holders])
