"""The jobs pages: every job of the server's executor (pipelines' Train and Run, and the
``keel train`` … jobs kept in the same folder) with its status, log and a Cancel button.
A job may have run in any project, so its run is linked by the run's permanent link
``/runs/{id}``, which goes to the run's project (:mod:`keel.server.ui.legacy`).

Thin over the executor :func:`~keel.server.executor.server_executor` gives, the one
``GET /api/v1/jobs`` reads. A job's page polls its status fragment every second with htmx
until the job is done.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput
from keel.jobs import JOB_STATUSES
from keel.server.auth import Principal
from keel.server.deps import require
from keel.server.executor import find_jobs, server_executor
from keel.server.guard import GuardedRoute
from keel.server.ui import render
from keel.server.ui.pipelines import at, look, took

router = APIRouter(route_class=GuardedRoute, prefix="/jobs", include_in_schema=False)

LOG_TAIL_BYTES = 64 * 1024
PAGE_SIZE = 100


def _context(**more: Any) -> dict[str, Any]:
    return {"at": at, "took": took, "look": look, "statuses": JOB_STATUSES, **more}


@router.get("", response_class=HTMLResponse)
async def jobs_page(
    request: Request, status: str = "", principal: Principal = Depends(require("viewer"))
) -> Response:
    if status and status not in JOB_STATUSES:
        raise InvalidInput(f"unknown job status {status!r}; known: {', '.join(JOB_STATUSES)}")
    executor = server_executor(request.app.state)
    jobs = await run_in_threadpool(find_jobs, executor, [status] if status else [], PAGE_SIZE)
    return render(
        request,
        "jobs/index.html",
        **_context(
            jobs=jobs,
            chosen=status,
            executor=executor,
            may_edit=principal.may("editor"),
        ),
    )


def _job_context(executor: Any, job_id: str) -> dict[str, Any]:
    job = executor.status(job_id)
    log = executor.logs(job.id, tail_bytes=LOG_TAIL_BYTES)
    return _context(job=job, log=log)


@router.get("/{job_id}", response_class=HTMLResponse)
async def job_page(
    job_id: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    executor = server_executor(request.app.state)
    context = await run_in_threadpool(_job_context, executor, job_id)
    return render(request, "jobs/job.html", may_edit=principal.may("editor"), **context)


@router.get("/{job_id}/status", response_class=HTMLResponse)
async def job_status(
    job_id: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> Response:
    """The job's live part (htmx swaps it in every second; done jobs stop the polling)."""
    executor = server_executor(request.app.state)
    context = await run_in_threadpool(_job_context, executor, job_id)
    return render(request, "jobs/_job_status.html", may_edit=principal.may("editor"), **context)


@router.post("/{job_id}/cancel")
async def cancel_job(
    job_id: str, request: Request, principal: Principal = Depends(require("editor"))
) -> Response:
    executor = server_executor(request.app.state)
    job = await run_in_threadpool(executor.cancel, job_id)
    form = await request.form()
    back = form.get("next")
    if isinstance(back, str) and back == "/jobs":
        return RedirectResponse("/jobs", status_code=303)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
