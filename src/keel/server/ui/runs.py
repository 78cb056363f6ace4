"""The run page, its metric charts and artifacts, and the comparison of runs.

Routes, each under ``/projects/{project}`` (run ids are global: a run page asked for
under another project than its own redirects there):

* ``GET /runs/{id}``: params, tags, latest metrics, environment, train report, failure
  traceback, parent and children, artifacts; charts load by htmx as they scroll into view.
* ``GET /runs/{id}/chart?key=K``: one metric's chart (downsampled on the server);
  ``&format=json`` gives its JSON twin (the figure's reduced data).
* ``GET /runs/{id}/files?path=P``: one folder of the artifacts browser.
* ``GET /runs/{id}/artifacts/{path}``: download one stored file.
* ``GET /compare?runs=A&runs=B``: param differences, metrics side by side, overlaid charts.
* ``GET /compare/chart?key=K&runs=A&runs=B``: one overlaid chart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from keel.errors import InvalidInput, KeelError, NotFound
from keel.server.guard import GuardedRoute
from keel.server.ui import render
from keel.server.ui.charts import Line, metric_figure, points_in
from keel.server.ui.common import (
    PROJECTS,
    VIEWER,
    blob_response,
    elsewhere,
    project_client,
)
from keel.server.ui.series import chart_series

router = APIRouter(
    route_class=GuardedRoute,
    prefix=PROJECTS + "/{project}",
    include_in_schema=False,
    dependencies=[VIEWER],
)

MAX_CHARTS = 24  # charts on one page; more metrics are listed, not drawn
MAX_COMPARED = 10
REPORT_FILES = ("train_report.json", "retest_report.json")
MAX_REPORT_BYTES = 2_000_000
MAX_LISTED_FILES = 500


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, project: str, run_id: str, path: str = "") -> Response:
    client = project_client(request, project)
    run = client.get_run(run_id)
    exp = client.get_exp(run.experiment_id)
    if exp.project != client.project:
        return elsewhere(request, exp.project, f"/runs/{run.id}")
    parent = client.get_run(run.parent_id) if run.parent_id else None
    files = client.list_run_artifact(run)
    names = {f.path for f in files}
    reports = {name: _read_report(client, files, name) for name in REPORT_FILES if name in names}
    return render(
        request,
        "run.html",
        run=run,
        exp=exp,
        parent=parent,
        children=run.children,
        metric_keys=sorted(run.metrics),
        max_charts=MAX_CHARTS,
        reports=reports,
        environment=_environment(run.environment),
        packages=run.environment.get("packages") or {},
        listing=_listing(files, path),
        produced=client.find_datasets({"run_id": run.id}, sort=[("version", 1)]),
        project=exp.project,
    )


@router.get("/runs/{run_id}/chart", response_class=HTMLResponse)
def run_chart(
    request: Request, project: str, run_id: str, key: str, format: str = "html"
) -> Response:
    client = project_client(request, project)
    run = client.get_run(run_id)
    series = chart_series(client, run.id, key)
    figure = metric_figure(key, [Line(run.name, series)]) if series.points > 1 else None
    return _chart(request, format, key, figure, series.points, series)


@router.get("/runs/{run_id}/files", response_class=HTMLResponse)
def run_files(request: Request, project: str, run_id: str, path: str = "") -> Response:
    client = project_client(request, project)
    run = client.get_run(run_id)
    files = client.list_run_artifact(run)
    return render(
        request, "_files.html", run=run, listing=_listing(files, path), project=client.project
    )


@router.get("/runs/{run_id}/artifacts/{path:path}")
def download(request: Request, project: str, run_id: str, path: str) -> Response:
    """One stored file, as an attachment (never shown inline: it is the run's content,
    not the server's, and could be a page that runs scripts)."""
    client = project_client(request, project)
    run = client.get_run(run_id)
    found = [f for f in client.list_run_artifact(run, path) if f.path == path]
    if not found:
        raise NotFound(f"run {run.id} has no file {path!r} (folders download file by file)")
    return blob_response(client.artifact_store, found[0])


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, project: str, runs: list[str] = Query(default=[])) -> Response:
    client = project_client(request, project)
    ids = list(dict.fromkeys(r for r in runs if r))  # keep the order, drop repeats
    if len(ids) < 2:
        raise InvalidInput("pick at least two runs to compare (tick them in a runs table)")
    if len(ids) > MAX_COMPARED:
        raise InvalidInput(f"compare at most {MAX_COMPARED} runs at once, not {len(ids)}")
    found = [client.get_run(i) for i in ids]
    param_keys = sorted({k for r in found for k in r.params})
    metric_keys = sorted({k for r in found for k in r.metrics})
    rows = [ParamRow(key, [r.params.get(key, MISSING) for r in found]) for key in param_keys]
    return render(
        request,
        "compare.html",
        runs=found,
        param_rows=rows,
        missing=MISSING,
        metric_keys=metric_keys,
        max_charts=MAX_CHARTS,
        run_query="&".join(f"runs={r.id}" for r in found),
        project=client.project,
    )


@router.get("/compare/chart", response_class=HTMLResponse)
def compare_chart(
    request: Request,
    project: str,
    key: str,
    runs: list[str] = Query(default=[]),
    format: str = "html",
) -> Response:
    client = project_client(request, project)
    ids = list(dict.fromkeys(r for r in runs if r))[:MAX_COMPARED]
    lines = [
        Line(f"{r.name} ({r.id[:7]})", chart_series(client, r.id, key))
        for r in (client.get_run(i) for i in ids)
    ]
    points = sum(line.series.points for line in lines)
    figure = metric_figure(key, [line for line in lines if len(line.series)]) if points else None
    return _chart(request, format, key, figure, points, None)


def _chart(
    request: Request,
    format: str,
    key: str,
    figure: dict[str, Any] | None,
    points: int,
    series: Any,
) -> Response:
    """A chart as the fragment pages load, or (``format=json``) its JSON twin: the
    figure's data, already reduced to what is drawn."""
    shown = points_in(figure) if figure else 0
    if format == "json":
        from fastapi.responses import JSONResponse

        return JSONResponse({"key": key, "points": points, "shown": shown, "figure": figure})
    if format != "html":
        raise InvalidInput(f"format is html or json, not {format!r}")
    return render(
        request, "_chart.html", key=key, figure=figure, points=points, shown=shown, series=series
    )


# --- helpers --------------------------------------------------------------------------------


class _Missing:
    """A param a run does not have (shown as a dash, different from any value)."""

    def __repr__(self) -> str:
        return "-"


MISSING = _Missing()


@dataclass(frozen=True)
class ParamRow:
    """One param across the compared runs."""

    key: str
    values: list[Any]

    @property
    def differs(self) -> bool:
        first = self.values[0]
        return any(v is MISSING or v != first for v in self.values[1:]) or first is MISSING


@dataclass(frozen=True)
class Listing:
    """One folder of a run's artifacts: its subfolders (with file counts) and files."""

    path: str
    folders: list[tuple[str, int]]
    files: list[Any]
    truncated: int

    @property
    def parents(self) -> list[tuple[str, str]]:
        """(name, path) of each folder from the top down to this one, for a breadcrumb."""
        parts = [p for p in self.path.split("/") if p]
        return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def _listing(files: list[Any], path: str) -> Listing:
    prefix = path.strip("/")
    lead = f"{prefix}/" if prefix else ""
    folders: dict[str, int] = {}
    here = []
    for f in files:
        if not f.path.startswith(lead):
            continue
        rest = f.path[len(lead) :]
        head, sep, _ = rest.partition("/")
        if sep:
            folders[head] = folders.get(head, 0) + 1
        else:
            here.append(f)
    truncated = max(0, len(here) - MAX_LISTED_FILES)
    return Listing(prefix, sorted(folders.items()), here[:MAX_LISTED_FILES], truncated)


def _read_report(client: Any, files: list[Any], name: str) -> Any:
    """A run's JSON report, or a line saying why it is not shown."""
    stored = next(f for f in files if f.path == name)
    if stored.size > MAX_REPORT_BYTES:
        return {"note": f"{name} is {stored.size:,} bytes: download it below"}
    try:
        with client.artifact_store.open(stored.sha256) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (KeelError, OSError, UnicodeDecodeError, ValueError) as exc:
        return {"note": f"{name} could not be read: {exc}"}


def _environment(env: dict[str, Any]) -> list[tuple[str, Any]]:
    """The environment's fields without the package list (shown apart, folded)."""
    return [(k, v) for k, v in sorted(env.items()) if k != "packages"]
