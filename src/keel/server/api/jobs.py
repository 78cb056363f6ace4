"""REST routes of jobs: every job of the server's executor (pipelines' Train and Run, and
the ``keel train`` … jobs kept in the same folder), its log and its cancellation.

The same :class:`~keel.jobs.Executor` the pipelines submit to and ``keel jobs`` reads.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from keel.jobs import JOB_STATUSES, Job
from keel.server.auth import Principal
from keel.server.deps import require
from keel.server.executor import find_jobs, server_executor
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, prefix="/jobs", tags=["jobs"])

LOG_TAIL_BYTES = 1024 * 1024


class JobOut(BaseModel):
    id: str
    status: str = Field(description=", ".join(JOB_STATUSES))
    name: str
    target: str
    executor: str
    worker: str | None = Field(description="the Dask worker the job ran on")
    labels: dict[str, str]
    created_at: float
    started_at: float | None
    ended_at: float | None
    timeout_s: float | None
    exit_code: int | None
    error: str | None
    traceback: str | None
    run_id: str | None
    result: Any = None
    cancel_requested: bool

    @classmethod
    def of(cls, job: Job) -> Self:
        """The job's record as the API shows it (every field the model names)."""
        names = JOB_FIELDS & cls.model_fields.keys()
        return cls.model_validate({name: getattr(job, name) for name in names})


JOB_FIELDS = frozenset(f.name for f in fields(Job))


@router.get("", response_model=list[JobOut])
async def list_jobs(
    request: Request,
    status: list[str] = Query([], description="only jobs with this status (repeatable)"),
    limit: int = Query(50, ge=1, le=500),
    _: Principal = Depends(require("viewer")),
) -> list[JobOut]:
    """Jobs, newest first."""
    unknown = [s for s in status if s not in JOB_STATUSES]
    if unknown:
        from keel.errors import InvalidInput

        raise InvalidInput(f"unknown job status {unknown[0]!r}; known: {', '.join(JOB_STATUSES)}")
    executor = server_executor(request.app.state)
    jobs = await run_in_threadpool(find_jobs, executor, status, limit)
    return [JobOut.of(j) for j in jobs]


@router.get("/{job_id}", response_model=JobOut)
async def get_job(
    job_id: str, request: Request, _: Principal = Depends(require("viewer"))
) -> JobOut:
    executor = server_executor(request.app.state)
    return JobOut.of(await run_in_threadpool(executor.status, job_id))


@router.get("/{job_id}/logs")
async def job_logs(
    job_id: str,
    request: Request,
    tail_bytes: int = Query(LOG_TAIL_BYTES, ge=1, description="the end of the log only"),
    _: Principal = Depends(require("viewer")),
) -> JSONResponse:
    """What the job printed (stdout and stderr), with its status."""
    executor = server_executor(request.app.state)
    job = await run_in_threadpool(executor.status, job_id)
    log = await run_in_threadpool(executor.logs, job.id, tail_bytes)
    return JSONResponse({"id": job.id, "status": job.status, "log": log})


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel_job(
    job_id: str, request: Request, _: Principal = Depends(require("editor"))
) -> JobOut:
    """Ask the job to stop (it is cancelled within a second or so; a done job is unchanged)."""
    executor = server_executor(request.app.state)
    return JobOut.of(await run_in_threadpool(executor.cancel, job_id))
