"""The model registry pages: models, a model's versions and aliases, one version and its
invocation records.

Routes, each under ``/projects/{project}`` (model names may hold ``/``, so the name is a
path and the fixed suffixes are matched first):

* ``GET /models``: every registered model of the project, with its latest version's drift
  badge (:func:`keel.server.ui.monitoring.drift_badges`).
* ``GET /models/{name}``: versions (label, aliases, metrics, hash, source run), paged.
* ``POST /models/{name}/aliases``: set or move an alias (editor, CSRF token); htmx gets
  the aliases panel back, a plain form a redirect.
* ``POST /models/{name}/aliases/{alias}/delete``: remove an alias (editor, CSRF token).
* ``GET /models/{name}/v/{version}``: one version with its lineage and invocation records.
* ``GET /models/{name}/v/{version}/invocations``: one page of invocation records.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.errors import KeelError, NotFound, NotInProject
from keel.server.guard import GuardedRoute
from keel.server.ui import missing_page, render
from keel.server.ui.common import (
    EDITOR,
    PAGE_SIZES,
    PROJECTS,
    VIEWER,
    page_of,
    project_client,
    wants_fragment,
)
from keel.server.ui.formatting import path_part, project_url

router = APIRouter(
    route_class=GuardedRoute, prefix=PROJECTS + "/{project}", include_in_schema=False
)


@router.get("/models", response_class=HTMLResponse, dependencies=[VIEWER])
def models(request: Request, project: str) -> Response:
    from keel.server.ui.monitoring import drift_badges

    client = project_client(request, project)
    found = client.find_models(sort=[("name", 1)], limit=1000)
    return render(
        request,
        "models.html",
        models=found,
        badges=drift_badges(request, client, found),
        project=client.project,
    )


@router.post("/models/{name:path}/aliases", response_class=HTMLResponse, dependencies=[EDITOR])
def set_alias(
    request: Request, project: str, name: str, alias: str = Form(...), version: int = Form(...)
) -> Response:
    client = project_client(request, project)
    message, failed = None, False
    try:
        client.set_alias((name, version), alias.strip())
        message = f"{alias.strip()} → version {version}"
    except KeelError as exc:
        if not wants_fragment(request, "aliases"):
            raise  # a plain form: the error page says what was wrong
        message, failed = str(exc).splitlines()[0], True
    return _aliases_answer(request, client, name, message, failed)


@router.post(
    "/models/{name:path}/aliases/{alias}/delete",
    response_class=HTMLResponse,
    dependencies=[EDITOR],
)
def delete_alias(request: Request, project: str, name: str, alias: str) -> Response:
    client = project_client(request, project)
    client.delete_alias(name, alias)
    return _aliases_answer(request, client, name, f"{alias} removed", False)


def _aliases_answer(
    request: Request, client: Any, name: str, message: str | None, failed: bool
) -> Response:
    if not wants_fragment(request, "aliases"):
        return RedirectResponse(
            project_url(client.project, f"/models/{path_part(name)}"), status_code=303
        )
    model = client.get_model(name)
    versions = client.find_model_versions({"model.name": name}, sort=[("version", -1)], limit=200)
    return render(
        request,
        "_aliases.html",
        model=model,
        versions=versions,
        message=message,
        failed=failed,
        project=client.project,
    )


@router.get(
    "/models/{name:path}/v/{version:int}/invocations",
    response_class=HTMLResponse,
    dependencies=[VIEWER],
)
def invocations(
    request: Request, project: str, name: str, version: int, page: int = 1, per: int = 25
) -> Response:
    client = project_client(request, project)
    mv = client.get_model_version((name, version))
    return render(
        request,
        "_invocations.html",
        mv=mv,
        project=client.project,
        **_invocation_page(client, mv, page, per),
    )


@router.get(
    "/models/{name:path}/v/{version:int}", response_class=HTMLResponse, dependencies=[VIEWER]
)
def version_page(
    request: Request,
    project: str,
    name: str,
    version: int,
    inv_page: int = 1,
    inv_per: int = 25,
) -> Response:
    client = project_client(request, project)
    try:
        mv = client.get_model_version((name, version))
    except NotInProject as exc:
        return _missing(request, exc, f"/models/{path_part(name)}/v/{version}")
    model = client.get_model(name)
    run = _source_run(client, mv.run_id)
    return render(
        request,
        "version.html",
        mv=mv,
        model=model,
        run=run,
        datasets=_lineage_datasets(client, run),
        files=_files(client, mv),
        project=client.project,
        **_invocation_page(client, mv, inv_page, inv_per),
    )


@router.get("/models/{name:path}", response_class=HTMLResponse, dependencies=[VIEWER])
def model_page(request: Request, project: str, name: str, page: int = 1, per: int = 50) -> Response:
    client = project_client(request, project)
    try:
        model = client.get_model(name)
    except NotInProject as exc:
        return _missing(request, exc, f"/models/{path_part(name)}")
    paging = page_of(page, per)
    versions = client.find_model_versions(
        {"model.name": name}, sort=[("version", -1)], limit=paging.limit, offset=paging.offset
    )
    has_next = len(versions) > paging.size
    versions = versions[: paging.size]
    # the alias form offers every version, not just this page's
    choices = (
        versions
        if paging.number == 1 and not has_next
        else client.find_model_versions({"model.name": name}, sort=[("version", -1)], limit=200)
    )
    return render(
        request,
        "model.html",
        model=model,
        versions=versions,
        alias_versions=choices,
        page=paging,
        has_next=has_next,
        page_sizes=PAGE_SIZES,
        metric_keys=sorted({k for v in versions for k in v.metrics})[:8],
        message=None,
        failed=False,
        project=client.project,
    )


# --- helpers --------------------------------------------------------------------------------


def _missing(request: Request, exc: NotInProject, path: str) -> Response:
    """The 404 page of a model this project lacks, linking the same page where it is."""
    return missing_page(request, str(exc), [(p, project_url(p, path)) for p in exc.elsewhere])


def _source_run(client: Any, run_id: str | None) -> Any:
    if run_id is None:
        return None
    try:
        return client.get_run(run_id)
    except NotFound:  # purged by keel gc: the version stays, its lineage ends here
        return None


def _lineage_datasets(client: Any, run: Any) -> list[tuple[str, Any]]:
    """(role, dataset) of the datasets around the source run: the one it trained on (its
    ``dataset`` tag, ``NAME@VERSION``) and any it produced."""
    if run is None:
        return []
    found: list[tuple[str, Any]] = []
    ref = run.tags.get("dataset")
    if isinstance(ref, str) and "@" in ref:
        ds_name, _, ds_version = ref.rpartition("@")
        with suppress(KeelError):  # a tag naming a dataset that is gone: nothing to link to
            found.append(("trained on", client.get_dataset(ds_name, ds_version)))
    for ds in client.find_datasets({"run_id": run.id}, sort=[("version", 1)]):
        found.append(("produced", ds))
    return found


def _files(client: Any, mv: Any) -> list[Any]:
    try:
        return client.list_model_artifact(mv)
    except NotFound:
        return []


def _invocation_page(client: Any, mv: Any, number: int, size: int) -> dict[str, Any]:
    """One page of a version's invocation records, newest first.

    The index rows of the page are read from the store (cheap: no record bodies), then the
    client decodes only the records of that page's time span; so page 40 does not parse
    the 39 pages before it.
    """
    paging = page_of(number, size, default_size=25)
    index = client.store.find_invocations(mv.id, limit=paging.offset + paging.limit)
    rows = index[paging.offset : paging.offset + paging.size]
    has_next = len(index) > paging.offset + paging.size
    records: list[Any] = []
    if rows:
        wanted = {r.request_id for r in rows}
        span = client.find_invocations(
            mv,
            since=min(r.timestamp for r in rows),
            until=max(r.timestamp for r in rows),
            limit=None,
        )
        by_id = {r.request_id: r for r in span if r.request_id in wanted}
        records = [by_id[r.request_id] for r in rows if r.request_id in by_id]
    return {"records": records, "inv_page": paging, "inv_has_next": has_next}
