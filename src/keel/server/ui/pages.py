"""The start page, a project's page and the experiment page (the runs table).

``GET /projects/{project}`` shows the store's projects (a table with their counts) and the
project's experiments, latest runs, models and datasets. ``GET /`` is the same page for the
project the visitor looked at last, or, with no such project, the one worth landing on
(:func:`landing_project`): after ``make demo``, the demo's project, not an empty
``default``. ``GET /projects/{project}/experiments/{id}`` is the runs table: chosen params
and metrics as columns, a filter box (see :mod:`keel.server.ui.filters`), sorting and paging
done by the store in SQL, so a 100,000-run experiment costs what one page of it costs. Its
``…/columns?search=`` fragment is the column picker: with 1,500 metric keys, a searchable
list of at most :data:`PICKER_SHOWN` at once, not 1,500 checkboxes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keel.errors import InvalidInput
from keel.server.deps import get_client
from keel.server.guard import GuardedRoute
from keel.server.ui import render
from keel.server.ui.common import (
    PAGE_SIZES,
    VIEWER,
    elsewhere,
    last_project,
    page_of,
    project_client,
    wants_fragment,
)
from keel.server.ui.filters import parse_filter
from keel.server.ui.formatting import project_slug

if TYPE_CHECKING:
    from keel.tracking.client import Client, ProjectSummary

router = APIRouter(route_class=GuardedRoute, include_in_schema=False, dependencies=[VIEWER])

RECENT = 15
DEFAULT_COLUMNS = 5  # params and metrics each, when the visitor chose none
PICKER_SAMPLE = 200  # the column picker offers the keys of this many newest runs
PICKER_SHOWN = 60  # keys listed at once; a search narrows the rest
SORTABLE_ATTRIBUTES = ("name", "status", "kind", "author", "start_time", "end_time", "created_at")


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> Response:
    """The page of the project the visitor looked at last, else of the one worth landing on."""
    base = get_client(request)
    summary = base.projects_summary()
    project = landing_project(base, summary, last_project(request))
    client = project_client(request, project_slug(project), _names(base, summary))
    return _home(request, client, summary)


@router.get("/projects/{project}", response_class=HTMLResponse)
def project_home(request: Request, project: str) -> Response:
    base = get_client(request)
    summary = base.projects_summary()
    client = project_client(request, project, _names(base, summary))
    return _home(request, client, summary)


def _names(base: Client, summary: list[ProjectSummary]) -> set[str]:
    return {p.name for p in summary} | {base.project}


def landing_project(base: Client, summary: list[ProjectSummary], last: str | None) -> str:
    """Where ``/`` goes: the project looked at last (if the store still has it); else the
    server's own project if it holds runs or models; else the project with the latest run
    or model; else the server's own project (a new, empty store)."""
    busy = {p.name for p in summary if p.runs or p.models}
    if last is not None and (last == base.project or any(p.name == last for p in summary)):
        return last
    if base.project in busy or not busy:
        return base.project
    store = base.store
    latest: list[tuple[int, str]] = []
    runs = store.find_runs(None, sort=[("created_at", -1)], limit=1)
    if runs:
        latest.append((runs[0].created_at, store.get_experiment(runs[0].experiment_id).project))
    models = store.find_models(None, sort=[("updated_at", -1)], limit=1)
    if models:
        latest.append((models[0].updated_at, models[0].project))
    found = [project for _, project in sorted(latest, reverse=True) if project in busy]
    return found[0] if found else sorted(busy)[0]


def _home(request: Request, client: Client, summary: list[ProjectSummary]) -> Response:
    experiments = client.find_exps(sort=[("name", 1)], limit=200)
    runs = client.find_runs(sort=[("created_at", -1)], limit=RECENT)
    names = {e.id: e.name for e in experiments}
    models = client.find_models(sort=[("updated_at", -1)], limit=50)
    datasets = client.find_datasets(sort=[("created_at", -1)], limit=RECENT)
    # the server's project and the one shown are listed even when they hold nothing yet
    listed = {p.name: p for p in summary}
    for name in (get_client(request).project, client.project):
        if name not in listed:
            from keel.tracking.client import ProjectSummary

            listed[name] = ProjectSummary(name)
    projects = sorted(listed.values(), key=lambda p: p.name)
    return render(
        request,
        "home.html",
        project=client.project,
        projects=projects,
        experiments=experiments,
        runs=runs,
        experiment_names=names,
        models=models,
        datasets=datasets,
    )


@router.get("/projects/{project}/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment(
    request: Request,
    project: str,
    experiment_id: str,
    q: str = "",
    sort: str = "-created_at",
    cols: str | None = None,
    page: int = 1,
    per: int = 50,
) -> Response:
    client = project_client(request, project)
    exp = client.get_exp(experiment_id)
    if exp.project != client.project:  # an id is global: show it under its own project
        return elsewhere(request, exp.project, f"/experiments/{exp.id}")
    paging = page_of(page, per)
    error = None
    runs: list[Any] = []
    try:
        query = parse_filter(q)
        runs = exp.find_runs(
            query, sort=[_sort_item(sort)], limit=paging.limit, offset=paging.offset
        )
    except InvalidInput as exc:  # a bad filter or an unknown field: said on the page
        error = str(exc)
    has_next = len(runs) > paging.size
    runs = runs[: paging.size]
    params, metrics = _columns(cols, runs)
    context = {
        "exp": exp,
        "runs": runs,
        "q": q,
        "sort": sort,
        "cols": ", ".join([f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]),
        "param_columns": params,
        "metric_columns": metrics,
        "page": paging,
        "has_next": has_next,
        "page_sizes": PAGE_SIZES,
        "error": error,
        "project": exp.project,
    }
    if wants_fragment(request, "runs"):
        return render(request, "_runs_table.html", **context)
    return render(request, "experiment.html", **context)


@router.get("/projects/{project}/experiments/{experiment_id}/columns", response_class=HTMLResponse)
def column_picker(
    request: Request,
    project: str,
    experiment_id: str,
    search: str = "",
    cols: str = "",
    format: str = "html",
) -> Response:
    """The runs table's column picker: the param and metric keys of the experiment's newest
    runs whose name holds ``search`` (any case), at most :data:`PICKER_SHOWN` of them, the
    chosen ones (``cols``) ticked. ``format=json`` gives every matching key."""
    client = project_client(request, project)
    exp = client.get_exp(experiment_id)
    if exp.project != client.project:
        return elsewhere(request, exp.project, f"/experiments/{exp.id}")
    params, metrics = client.store.run_keys(exp.id, PICKER_SAMPLE)
    needle = search.strip().lower()
    found = [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    found = [f for f in found if needle in f.lower()]
    if format == "json":
        from fastapi.responses import JSONResponse

        return JSONResponse({"search": search, "sample": PICKER_SAMPLE, "columns": found})
    if format != "html":
        raise InvalidInput(f"format is html or json, not {format!r}")
    chosen_params, chosen_metrics = _columns(cols, [])
    chosen = {f"params.{k}" for k in chosen_params} | {f"metrics.{k}" for k in chosen_metrics}
    return render(
        request,
        "_columns.html",
        columns=found[:PICKER_SHOWN],
        more=max(0, len(found) - PICKER_SHOWN),
        total=len(params) + len(metrics),
        chosen=chosen,
        search=search,
        sample=PICKER_SAMPLE,
    )


def _sort_item(text: str) -> tuple[str, int]:
    """``-metrics.auc`` → ("metrics.auc", -1); the field is checked by the query engine."""
    text = text.strip() or "-created_at"
    field, direction = (text[1:], -1) if text.startswith("-") else (text, 1)
    if not field:
        raise InvalidInput("sort by which field? e.g. -metrics.auc or params.model")
    return field, direction


def _columns(cols: str | None, runs: list[Any]) -> tuple[list[str], list[str]]:
    """(param keys, metric keys) shown as columns: the chosen ones, else the first few
    keys the runs on this page have."""
    if cols is not None and cols.strip():
        params, metrics = [], []
        for item in (c.strip() for c in cols.split(",")):
            prefix, _, key = item.partition(".")
            if key and prefix == "params" and key not in params:
                params.append(key)
            elif key and prefix == "metrics" and key not in metrics:
                metrics.append(key)
        return params, metrics
    params_seen, metrics_seen = _available(runs)
    return params_seen[:DEFAULT_COLUMNS], metrics_seen[:DEFAULT_COLUMNS]


def _available(runs: list[Any]) -> tuple[list[str], list[str]]:
    params: set[str] = set()
    metrics: set[str] = set()
    for run in runs:
        params.update(run.params)
        metrics.update(run.metrics)
    return sorted(params), sorted(metrics)
