"""The UI's old URLs, before every page named its project: each redirects (307) to its page
under ``/projects/{project}/``, so bookmarks and links shared before keep working.

* ``/runs/{id}…``, ``/experiments/{id}…`` and ``/compare?runs=…``: ids are global, so they
  go to the project that holds the run or experiment (the first run, for a comparison).
  A run's permanent link is therefore ``/runs/{id}``: the jobs pages use it, since a job
  may have run in any project.
* ``/models…`` and ``/datasets…``: names are per project, so they go to the project named
  by ``?project=`` if any, else to the one the visitor looked at last, else to the one
  ``/`` lands on.
* ``/projects/a/b…``: the old link to a project whose name holds ``/`` goes to its page
  (``/projects/a~b``); anything else under ``/projects/`` that no page matched is a 404.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from keel.errors import NotFound
from keel.server.deps import get_client
from keel.server.guard import GuardedRoute
from keel.server.ui.common import PROJECTS, VIEWER, known_projects, last_project
from keel.server.ui.formatting import project_url

router = APIRouter(route_class=GuardedRoute, include_in_schema=False, dependencies=[VIEWER])


def _moved(request: Request, project: str, drop_project: bool = False) -> Response:
    """The same path and query under ``project``."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(request.url.path, safe="/")
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "project"]
    query = urlencode(items) if drop_project else request.url.query
    return RedirectResponse(project_url(project, path) + (f"?{query}" if query else ""), 307)


def _run_project(request: Request, run_id: str) -> str:
    store = get_client(request).store
    run = store.get_run(run_id)
    return store.get_experiment(run.experiment_id).project


def _named_project(request: Request) -> str:
    """The project of an old name-addressed URL: ``?project=``, else the last one looked
    at, else where ``/`` lands."""
    from keel.server.ui.pages import landing_project

    asked = request.query_params.get("project")
    if asked:
        return asked
    base = get_client(request)
    summary = base.projects_summary()
    return landing_project(base, summary, last_project(request))


@router.get("/experiments/{experiment_id}")
def experiment(request: Request, experiment_id: str) -> Response:
    project = get_client(request).store.get_experiment(experiment_id).project
    return _moved(request, project)


@router.get("/runs/{run_id}")
def run(request: Request, run_id: str) -> Response:
    return _moved(request, _run_project(request, run_id))


@router.get("/runs/{run_id}/{rest:path}")
def run_part(request: Request, run_id: str, rest: str) -> Response:
    return _moved(request, _run_project(request, run_id))


@router.get("/compare")
def compare(request: Request, runs: list[str] = Query(default=[])) -> Response:
    return _compared(request, runs)


@router.get("/compare/chart")
def compare_chart(request: Request, runs: list[str] = Query(default=[])) -> Response:
    return _compared(request, runs)


def _compared(request: Request, runs: list[str]) -> Response:
    first = next((r for r in runs if r), None)
    project = _run_project(request, first) if first else _named_project(request)
    return _moved(request, project)


@router.get("/models")
def models(request: Request) -> Response:
    return _moved(request, _named_project(request), drop_project=True)


@router.get("/models/{rest:path}")
def model_part(request: Request, rest: str) -> Response:
    return _moved(request, _named_project(request), drop_project=True)


@router.get("/datasets")
def datasets(request: Request) -> Response:
    return _moved(request, _named_project(request), drop_project=True)


@router.get("/datasets/{rest:path}")
def dataset_part(request: Request, rest: str) -> Response:
    return _moved(request, _named_project(request), drop_project=True)


@router.get(PROJECTS + "/{rest:path}")
def project_with_slash(request: Request, rest: str) -> Response:
    """``/projects/team/vision``, the old link to project ``team/vision``."""
    known = known_projects(get_client(request))
    if rest.strip("/") in known:
        return RedirectResponse(project_url(rest.strip("/")), 307)
    raise NotFound(f"There is no page at {request.url.path}.")
