"""REST routes of pipelines: upload (multipart), list, params, Train and Run as jobs, the
jobs' status, logs and cancellation, and a pipeline run's results.

The same :class:`~keel.server.pipelines.service.PipelineService` the pages use; a refusal is
``{"message": ...}`` with a 4xx status (413 for an upload over ``max_upload_mb``).
"""

from __future__ import annotations

from typing import Any, Self

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput, NotFound
from keel.jobs import Job
from keel.server.api import jobs as jobs_api
from keel.server.auth import Principal
from keel.server.deps import require
from keel.server.guard import GuardedRoute
from keel.server.pipelines.service import pipeline_service
from keel.server.pipelines.store import MAX_SUPPORT_FILES, InputFile, Pipeline, UploadTooLarge

router = APIRouter(route_class=GuardedRoute, prefix="/pipelines", tags=["pipelines"])

LOG_TAIL_BYTES = 1024 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainRequest(_Body):
    """Train a pipeline on an input file."""

    input: str = Field(description="name of an uploaded input file (train's inpt)")
    test_input: str | None = Field(None, description="input file for the pipeline's test()")
    params: dict[str, Any] = Field(default_factory=dict, description="its training params")


class RunRequest(_Body):
    """Run a pipeline on an input file."""

    input: str = Field(description="name of an uploaded input file (run_pipeline's input)")
    params: dict[str, Any] = Field(default_factory=dict, description="its run params")
    version: int | None = Field(None, ge=1, description="trained version (default: latest)")


class StoredFileOut(BaseModel):
    name: str
    size: int


class PipelineOut(BaseModel):
    name: str
    control_file: str
    support_files: list[StoredFileOut]
    requirements: list[str] = Field(description="declared only: never installed")
    uploaded_by: str
    uploaded_at: float

    @classmethod
    def of(cls, p: Pipeline) -> PipelineOut:
        return cls(
            name=p.name,
            control_file=p.control_file,
            support_files=[StoredFileOut(name=f.name, size=f.size) for f in p.support_files],
            requirements=p.requirements,
            uploaded_by=p.uploaded_by,
            uploaded_at=p.uploaded_at,
        )


class InputOut(BaseModel):
    name: str
    size: int
    modified: float

    @classmethod
    def of(cls, f: InputFile) -> InputOut:
        return cls(name=f.name, size=f.size, modified=f.modified)


class JobOut(jobs_api.JobOut):
    """A pipeline's job: the job's record plus the pipeline and the kind of work."""

    pipeline: str | None = None
    kind: str | None = Field(default=None, description="train or run")

    @classmethod
    def of(cls, job: Job) -> Self:
        return (
            super()
            .of(job)
            .model_copy(
                update={"pipeline": job.labels.get("pipeline"), "kind": job.labels.get("kind")}
            )
        )


_FILE = {"type": "string", "format": "binary"}


def _multipart(required: list[str], **properties: Any) -> dict[str, Any]:
    """OpenAPI for a form route read by hand (``request.form()``), so /docs shows its fields."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"content": {"multipart/form-data": {"schema": schema}}}}


# --------------------------------------------------------------------------- pipelines


@router.get("", response_model=list[PipelineOut])
async def list_pipelines(
    request: Request, _: Principal = Depends(require("viewer"))
) -> list[PipelineOut]:
    service = pipeline_service(request)
    return [PipelineOut.of(p) for p in await run_in_threadpool(service.store.list)]


@router.post(
    "",
    status_code=201,
    response_model=PipelineOut,
    openapi_extra=_multipart(
        required=["control"],
        control=_FILE,
        support={"type": "array", "items": _FILE},
        name={"type": "string"},
        requirements={"type": "string"},
        requirements_file=_FILE,
        replace={"type": "boolean"},
    ),
)
async def upload_pipeline(
    request: Request, principal: Principal = Depends(require("editor"))
) -> PipelineOut:
    """Upload a pipeline: ``control`` (the .py control file), ``support`` (any number of
    files), ``requirements`` (text) or ``requirements_file``, ``name``, ``replace``."""
    service = pipeline_service(request)
    form = await request.form(max_files=MAX_SUPPORT_FILES + 5)
    try:
        pipeline = await service.save_pipeline(form, principal.name)
    except UploadTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    finally:
        await form.close()
    return PipelineOut.of(pipeline)


# --------------------------------------------------------------------------- input files


@router.get("/inputs", response_model=list[InputOut])
async def list_inputs(
    request: Request, _: Principal = Depends(require("viewer"))
) -> list[InputOut]:
    service = pipeline_service(request)
    return [InputOut.of(f) for f in await run_in_threadpool(service.store.inputs)]


@router.post(
    "/inputs",
    status_code=201,
    response_model=InputOut,
    openapi_extra=_multipart(required=["file"], file=_FILE, replace={"type": "boolean"}),
)
async def upload_input(request: Request, _: Principal = Depends(require("editor"))) -> InputOut:
    """Upload an input file (``file``; ``replace`` to overwrite one of the same name)."""
    service = pipeline_service(request)
    form = await request.form(max_files=2)
    try:
        saved = await service.save_input(form)
    except UploadTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    finally:
        await form.close()
    return InputOut.of(saved)


# --------------------------------------------------------------------------- jobs


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    request: Request,
    pipeline: str | None = Query(None, description="only this pipeline's jobs"),
    limit: int = Query(50, ge=1, le=500),
    _: Principal = Depends(require("viewer")),
) -> list[JobOut]:
    service = pipeline_service(request)
    jobs = await run_in_threadpool(service.jobs.list, pipeline, limit)
    return [JobOut.of(j) for j in jobs]


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(
    job_id: str, request: Request, _: Principal = Depends(require("viewer"))
) -> JobOut:
    service = pipeline_service(request)
    return JobOut.of(await run_in_threadpool(service.jobs.get, job_id))


@router.get("/jobs/{job_id}/logs")
async def job_logs(
    job_id: str,
    request: Request,
    tail_bytes: int = Query(LOG_TAIL_BYTES, ge=1, description="the end of the log only"),
    _: Principal = Depends(require("viewer")),
) -> JSONResponse:
    """What the job printed (stdout and stderr), with its status."""
    service = pipeline_service(request)
    job = await run_in_threadpool(service.jobs.get, job_id)
    log = await run_in_threadpool(service.jobs.executor.logs, job.id, tail_bytes)
    return JSONResponse({"id": job.id, "status": job.status, "log": log})


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(
    job_id: str, request: Request, _: Principal = Depends(require("editor"))
) -> JobOut:
    """Ask the job to stop (it is cancelled within a second or so; a done job is unchanged)."""
    service = pipeline_service(request)
    job = await run_in_threadpool(service.jobs.get, job_id)
    return JobOut.of(await run_in_threadpool(service.jobs.executor.cancel, job.id))


# --------------------------------------------------------------------------- results


@router.get("/runs/{run_id}/results")
async def run_results(
    run_id: str,
    request: Request,
    offset: int = Query(0, ge=0, description="first row of the table page"),
    limit: int = Query(100, ge=1, le=10_000, description="rows in the table page"),
    _: Principal = Depends(require("viewer")),
) -> JSONResponse:
    """A pipeline run's results: a page of its table, its plotly figures, its text
    (``text_html``: sanitised for display), its images (``imgs``: ``data:`` URIs) and any
    other keys of its ``preds`` (``extra``)."""
    service = pipeline_service(request)
    return JSONResponse(await run_in_threadpool(_results, service, run_id, offset, limit))


def _results(service: Any, run_id: str, offset: int, limit: int) -> dict[str, Any]:
    from keel.server.pipelines import results

    try:
        run = service.client.get_run(run_id)
    except (NotFound, InvalidInput):
        raise NotFound(f"no run {run_id!r}") from None
    if run.kind != "pipeline-run":
        raise NotFound(f"run {run_id} is not a pipeline run")
    summary = results.read_summary(service.client, run.id)
    body: dict[str, Any] = {
        "run_id": run.id,
        "status": run.status,
        "failure": run.failure,
        "summary": summary.to_json() if summary else None,
        "table": None,
        "graphs": [],
        "text": None,
        "text_html": None,
        "imgs": [],
        "extra": {},
    }
    if summary is None:
        return body
    if summary.columns:
        page = results.read_table(service.client, run.id, offset, limit)
        body["table"] = {
            "columns": page.columns,
            "rows": page.rows,
            "total": page.total,
            "offset": page.offset,
            "limit": page.limit,
        }
    body["graphs"] = results.read_graphs(service.client, run.id, summary.graphs)
    text = results.read_text(service.client, run.id) if summary.text else None
    body["text"] = text
    if text is not None and summary.text == "html":
        body["text_html"] = results.safe_html(text)
    body["imgs"] = results.read_images(service.client, run.id) if summary.imgs else []
    body["extra"] = results.read_extra(service.client, run.id) if summary.extra else {}
    return body


# --------------------------------------------------------------------------- one pipeline


@router.get("/{name}", response_model=PipelineOut)
async def get_pipeline(
    name: str, request: Request, _: Principal = Depends(require("viewer"))
) -> PipelineOut:
    service = pipeline_service(request)
    return PipelineOut.of(await run_in_threadpool(service.store.get, name))


@router.delete("/{name}", status_code=204)
async def delete_pipeline(
    name: str, request: Request, _: Principal = Depends(require("editor"))
) -> None:
    """Remove the pipeline's files (its runs and trained versions stay in the store)."""
    service = pipeline_service(request)
    await run_in_threadpool(service.store.delete, name)


@router.get("/{name}/params")
async def pipeline_params(
    name: str, request: Request, _: Principal = Depends(require("viewer"))
) -> JSONResponse:
    """The fields of the training and run forms, from the pipeline's ``get_params()``."""
    service = pipeline_service(request)
    pipeline = await run_in_threadpool(service.store.get, name)
    params = await run_in_threadpool(service.params, pipeline)
    return JSONResponse(params.to_json())


@router.post("/{name}/train", status_code=202, response_model=JobOut)
async def train_pipeline(
    name: str,
    body: TrainRequest,
    request: Request,
    principal: Principal = Depends(require("editor")),
) -> JobOut:
    """Train the pipeline in a job (its run has kind ``train`` and makes a model version)."""
    service = pipeline_service(request)
    job = await run_in_threadpool(
        lambda: service.submit(
            name, "train", body.input, body.params, principal.name, test_input=body.test_input
        )
    )
    return JobOut.of(job)


@router.post("/{name}/run", status_code=202, response_model=JobOut)
async def run_pipeline(
    name: str,
    body: RunRequest,
    request: Request,
    principal: Principal = Depends(require("editor")),
) -> JobOut:
    """Run the pipeline on an input file in a job (its run has kind ``pipeline-run``)."""
    service = pipeline_service(request)
    job = await run_in_threadpool(
        lambda: service.submit(
            name, "run", body.input, body.params, principal.name, version=body.version
        )
    )
    return JobOut.of(job)
