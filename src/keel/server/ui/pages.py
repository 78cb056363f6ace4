"""The start page and the experiment page (the runs table).

``GET /`` shows the projects, the chosen project's experiments, its latest runs, models
and datasets. ``GET /experiments/{id}`` is the runs table: chosen params and metrics as
columns, a filter box (see :mod:`keel.server.ui.filters`), sorting and paging done by the
store in SQL, so a 100,000-run experiment costs what one page of it costs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.errors import InvalidInput
from keel.server.guard import GuardedRoute
from keel.server.ui import render
from keel.server.ui.common import (
    PAGE_SIZES,
    SESSION_PROJECT,
    VIEWER,
    page_of,
    project_of,
    ui_client,
    wants_fragment,
)
from keel.server.ui.filters import parse_filter

router = APIRouter(route_class=GuardedRoute, include_in_schema=False, dependencies=[VIEWER])

RECENT = 15
DEFAULT_COLUMNS = 5  # params and metrics each, when the visitor chose none
SORTABLE_ATTRIBUTES = ("name", "status", "kind", "author", "start_time", "end_time", "created_at")


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    client = ui_client(request)
    experiments = client.find_exps(sort=[("name", 1)], limit=200)
    runs = client.find_runs(sort=[("created_at", -1)], limit=RECENT)
    names = {e.id: e.name for e in experiments}
    models = client.find_models(sort=[("updated_at", -1)], limit=50)
    datasets = client.find_datasets(sort=[("created_at", -1)], limit=RECENT)
    # Every project that holds an experiment (a few rows: experiments are few).
    projects = sorted({e.project for e in client.store.find_experiments(None)} | {client.project})
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


@router.get("/projects/{name:path}")
def choose_project(request: Request, name: str) -> Response:
    """Browse another project (remembered in the session)."""
    from keel.store.validation import check_name

    check_name(name, "project")
    request.session[SESSION_PROJECT] = name
    return RedirectResponse("/", status_code=303)


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment(
    request: Request,
    experiment_id: str,
    q: str = "",
    sort: str = "-created_at",
    cols: str | None = None,
    page: int = 1,
    per: int = 50,
) -> Response:
    client = ui_client(request)
    exp = client.get_exp(experiment_id)
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
        "available": _available(runs),
        "page": paging,
        "has_next": has_next,
        "page_sizes": PAGE_SIZES,
        "error": error,
        "project": project_of(request),
    }
    if wants_fragment(request, "runs"):
        return render(request, "_runs_table.html", **context)
    return render(request, "experiment.html", **context)


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
