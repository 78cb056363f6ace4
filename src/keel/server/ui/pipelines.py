"""The pipelines pages: upload pipelines and input files, train and run them, watch the job,
see the results (table, plotly graphs, text).

Pages are thin over :class:`~keel.server.pipelines.service.PipelineService`. A refused
upload or request re-renders its page with the one-line reason and a 4xx status; the job
page polls its status fragment every second with htmx until the job is done.

Pipelines are the server's, not a project's, so these pages live at ``/pipelines``; the runs
and models they make are in the server's own project, and link there.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput, KeelError, NotFound
from keel.jobs import Job
from keel.server.auth import Principal
from keel.server.deps import require
from keel.server.guard import GuardedRoute
from keel.server.pipelines.service import (
    PipelineService,
    http_status,
    pipeline_service,
)
from keel.server.pipelines.store import MAX_SUPPORT_FILES
from keel.server.ui import render

router = APIRouter(route_class=GuardedRoute, prefix="/pipelines", include_in_schema=False)

PARAM_PREFIX = "param:"
PAGE_SIZE = 50
LOG_TAIL_BYTES = 64 * 1024


def at(seconds: float | None) -> str:
    """A job's time (seconds since the epoch) as the other pages show times."""
    from keel.server.ui.formatting import when

    return when(int(seconds * 1000)) if seconds else "-"


def took(job: Job) -> str:
    """How long a job ran (so far)."""
    from keel.server.ui.formatting import duration

    if job.started_at is None:
        return "-"
    end = job.ended_at or time.time()
    return duration(int(job.started_at * 1000), int(end * 1000))


#: the look (keel.css's run statuses) of each job status
_LOOK = {"queued": "scheduled", "cancelled": "killed", "timed_out": "failed"}


def look(status: str) -> str:
    return f"{status} {_LOOK.get(status, '')}".strip()


def _context(**more: Any) -> dict[str, Any]:
    return {"at": at, "took": took, "look": look, **more}


def _may_edit(principal: Principal) -> bool:
    return principal.may("editor")


# --------------------------------------------------------------------------- list + uploads


def _index(
    request: Request,
    service: PipelineService,
    principal: Principal,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "pipelines/index.html",
        status=status,
        **_context(
            pipelines=service.store.list(),
            inputs=service.store.inputs(),
            jobs=service.jobs.list(limit=20),
            may_edit=_may_edit(principal),
            error=error,
            notice=notice,
            project=service.client.project,
        ),
    )


@router.get("", response_class=HTMLResponse)
async def pipelines_page(
    request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    service = pipeline_service(request)
    notice = request.query_params.get("uploaded")
    message = f"input file {notice!r} uploaded" if notice else None
    return await run_in_threadpool(_index, request, service, principal, 200, None, message)


@router.post("/upload")
async def upload_pipeline(
    request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    service = pipeline_service(request)
    form = await request.form(max_files=MAX_SUPPORT_FILES + 5)
    try:
        pipeline = await service.save_pipeline(form, principal.name)
    except KeelError as exc:
        return await run_in_threadpool(
            _index, request, service, principal, http_status(exc), str(exc)
        )
    finally:
        await form.close()
    return RedirectResponse(f"/pipelines/{pipeline.name}", status_code=303)


@router.post("/inputs")
async def upload_input(
    request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    service = pipeline_service(request)
    form = await request.form(max_files=2)
    try:
        saved = await service.save_input(form)
    except KeelError as exc:
        return await run_in_threadpool(
            _index, request, service, principal, http_status(exc), str(exc)
        )
    finally:
        await form.close()
    back = form.get("next")
    if isinstance(back, str) and back.startswith("/pipelines/") and "//" not in back:
        return RedirectResponse(back, status_code=303)
    return RedirectResponse(f"/pipelines?uploaded={saved.name}", status_code=303)


# --------------------------------------------------------------------------- jobs


def _job_context(service: PipelineService, job_id: str) -> dict[str, Any]:
    job = service.jobs.get(job_id)
    log = service.jobs.executor.logs(job.id, tail_bytes=LOG_TAIL_BYTES)
    return _context(
        job=job, log=log, kind=job.labels.get("kind", ""), project=service.client.project
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(
    job_id: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    service = pipeline_service(request)
    context = await run_in_threadpool(_job_context, service, job_id)
    return render(request, "pipelines/job.html", may_edit=_may_edit(principal), **context)


@router.get("/jobs/{job_id}/status", response_class=HTMLResponse)
async def job_status(
    job_id: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    """The job's live part (htmx swaps it in every second; done jobs stop the polling)."""
    service = pipeline_service(request)
    context = await run_in_threadpool(_job_context, service, job_id)
    return render(request, "pipelines/_job_status.html", may_edit=_may_edit(principal), **context)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(
    job_id: str, request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    service = pipeline_service(request)
    job = service.jobs.get(job_id)
    await run_in_threadpool(service.jobs.executor.cancel, job.id)
    return RedirectResponse(f"/pipelines/jobs/{job.id}", status_code=303)


# --------------------------------------------------------------------------- results


def _result_context(service: PipelineService, run_id: str, page: int) -> dict[str, Any]:
    from keel.server.pipelines import results

    try:
        run = service.client.get_run(run_id)
    except (NotFound, InvalidInput):
        raise NotFound(f"no run {run_id!r}") from None
    if run.kind != "pipeline-run":
        raise NotFound(f"run {run_id} is not a pipeline run")
    summary = results.read_summary(service.client, run.id)
    table = graphs = text = None
    images: list[str] = []
    extra: dict[str, Any] = {}
    if summary is not None:
        if summary.columns:
            offset = (max(page, 1) - 1) * PAGE_SIZE
            table = results.read_table(service.client, run.id, offset, PAGE_SIZE)
        graphs = [
            {**figure, "config": {"responsive": True, "displaylogo": False}}
            for figure in results.read_graphs(service.client, run.id, summary.graphs)
        ]
        raw = results.read_text(service.client, run.id) if summary.text else None
        if raw is not None:
            text = results.safe_html(raw) if summary.text == "html" else raw
        images = results.read_images(service.client, run.id) if summary.imgs else []
        extra = results.read_extra(service.client, run.id) if summary.extra else {}
    return _context(
        run=run,
        summary=summary,
        table=table,
        graphs=graphs or [],
        text=text,
        images=images,
        extra=extra,
        project=service.client.project,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def result_page(
    run_id: str,
    request: Request,
    page: int = 1,
    principal: Principal = Depends(require("viewer")),
) -> Response:
    service = pipeline_service(request)
    context = await run_in_threadpool(_result_context, service, run_id, page)
    return render(request, "pipelines/result.html", **context)


# --------------------------------------------------------------------------- one pipeline


def _detail(
    request: Request,
    service: PipelineService,
    principal: Principal,
    name: str,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    pipeline = service.store.get(name)
    return render(
        request,
        "pipelines/detail.html",
        status=status,
        **_context(
            pipeline=pipeline,
            params=service.params(pipeline),
            inputs=service.store.inputs(),
            versions=service.versions(pipeline.name),
            jobs=service.jobs.list(pipeline.name, limit=20),
            may_edit=_may_edit(principal),
            error=error,
            prefix=PARAM_PREFIX,
            project=service.client.project,
        ),
    )


@router.get("/{name}", response_class=HTMLResponse)
async def pipeline_page(
    name: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    service = pipeline_service(request)
    return await run_in_threadpool(_detail, request, service, principal, name)


async def _submit(request: Request, name: str, phase: str, principal: Principal) -> Response:
    service = pipeline_service(request)
    await run_in_threadpool(service.store.get, name)  # a missing pipeline is a 404 page
    form = await request.form()
    values = {
        key[len(PARAM_PREFIX) :]: value
        for key, value in form.multi_items()
        if key.startswith(PARAM_PREFIX) and isinstance(value, str)
    }
    input_name = form.get("input")
    test_input = form.get("test_input")
    version = form.get("version")
    try:
        if version not in (None, "") and not (isinstance(version, str) and version.isdigit()):
            raise InvalidInput(f"version {version!r} is not a number")
        job = await run_in_threadpool(
            service.submit,
            name,
            phase,
            input_name if isinstance(input_name, str) else None,
            values,
            principal.name,
            True,
            test_input if isinstance(test_input, str) and test_input else None,
            int(version) if isinstance(version, str) and version else None,
        )
    except KeelError as exc:
        return await run_in_threadpool(
            _detail, request, service, principal, name, http_status(exc), str(exc)
        )
    return RedirectResponse(f"/pipelines/jobs/{job.id}", status_code=303)


@router.post("/{name}/train")
async def train_pipeline(
    name: str, request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    return await _submit(request, name, "train", principal)


@router.post("/{name}/run")
async def run_pipeline(
    name: str, request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    return await _submit(request, name, "run", principal)
