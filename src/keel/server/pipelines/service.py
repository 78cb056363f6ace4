"""What the UI and the REST API share about pipelines: one object per app holding the store,
the executor and the job submission, and the handling of upload requests.

Both front ends are thin: they parse the request, call :class:`PipelineService` and render
or serialise what it returns. Uploads are refused by their ``Content-Length`` before any
byte is read when they cannot fit; otherwise the store counts the bytes as it copies.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from keel.errors import InvalidInput
from keel.server.guard import FORM_OVERHEAD_BYTES
from keel.server.pipelines.params import TIMEOUT_S, PipelineParams, coerce, read_params
from keel.server.pipelines.store import (
    IncomingFile,
    Pipeline,
    PipelineStore,
    UploadTooLarge,
)

if TYPE_CHECKING:
    from starlette.datastructures import FormData, UploadFile

    from keel.jobs import Job
    from keel.server.pipelines.jobs import PipelineJobs
    from keel.server.settings import ServerSettings
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi

#: room for the form's text fields and multipart framing on top of the files
_lock = threading.Lock()


@dataclass
class PipelineService:
    settings: ServerSettings
    client: Client
    store: PipelineStore
    jobs: PipelineJobs

    # --- pipelines -----------------------------------------------------------------------

    def params(self, pipeline: Pipeline) -> PipelineParams:
        return read_params(
            pipeline,
            timeout_s=min(TIMEOUT_S, self.settings.job_timeout_s),
            memory_mb=self.settings.job_memory_mb,
            environment=self.jobs.executor.environment,
        )

    def versions(self, name: str, limit: int = 20) -> list[ModelVersionApi]:
        """The model versions training ``name`` made, newest first."""
        return self.client.find_model_versions(
            {"model.name": name}, sort=[("version", -1)], limit=limit
        )

    def submit(
        self,
        name: str,
        phase: str,
        input_name: str | None,
        values: Mapping[str, Any],
        submitted_by: str,
        from_form: bool = False,
        test_input: str | None = None,
        version: int | None = None,
    ) -> Job:
        """Check a Train (``phase="train"``) or Run request and submit its job."""
        pipeline = self.store.get(name)
        if not input_name:
            raise InvalidInput("choose an input file (upload one first if there is none)")
        self.store.input_path(input_name)
        if test_input:
            self.store.input_path(test_input)
        declared = self.params(pipeline)
        if declared.error and not from_form:
            params = dict(values)  # the declaration is unreadable: pass what was sent as is
        else:
            params = coerce(declared.fields(phase), values, self.store.input_path, from_form)
        if phase == "train":
            return self.jobs.submit_train(pipeline, input_name, params, submitted_by, test_input)
        return self.jobs.submit_run(pipeline, input_name, params, submitted_by, version)

    # --- uploads -------------------------------------------------------------------------

    async def save_pipeline(self, form: FormData, uploaded_by: str) -> Pipeline:
        """Keep the pipeline a multipart form uploads (fields ``control``, ``support``,
        ``requirements`` or ``requirements_file``, ``name``, ``replace``)."""
        from starlette.concurrency import run_in_threadpool

        control = _file(form, "control")
        if control is None:
            raise InvalidInput("choose a control file (the .py file with train and run_pipeline)")
        support = [f for f in (_as_upload(v) for v in form.getlist("support")) if f is not None]
        requirements = _text(form, "requirements")
        requirements_file = _file(form, "requirements_file")
        if requirements_file is not None:
            data = await requirements_file.read(FORM_OVERHEAD_BYTES + 1)
            if len(data) > FORM_OVERHEAD_BYTES:
                raise UploadTooLarge("the requirements file is over 1 MB")
            try:
                requirements = f"{requirements}\n{data.decode('utf-8-sig')}"
            except UnicodeDecodeError:
                raise InvalidInput("the requirements file is not UTF-8 text") from None
        return await run_in_threadpool(
            self.store.save,
            _incoming(control),
            [_incoming(f) for f in support],
            requirements,
            _text(form, "name").strip() or None,
            uploaded_by,
            _flag(form, "replace"),
        )

    async def save_input(self, form: FormData) -> Any:
        from starlette.concurrency import run_in_threadpool

        upload = _file(form, "file")
        if upload is None:
            raise InvalidInput("choose an input file to upload")
        return await run_in_threadpool(
            self.store.save_input, _incoming(upload), _flag(form, "replace")
        )


def _as_upload(value: Any) -> UploadFile | None:
    """An uploaded file, or None for a file input left empty (a browser sends a part with
    no name and no bytes)."""
    from starlette.datastructures import UploadFile

    if not isinstance(value, UploadFile):
        return None
    if not value.filename and not value.size:
        return None
    return value


def _file(form: FormData, key: str) -> UploadFile | None:
    return _as_upload(form.get(key))


def _incoming(upload: UploadFile) -> IncomingFile:
    upload.file.seek(0)
    return IncomingFile(upload.filename or "", upload.file)


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _flag(form: FormData, key: str) -> bool:
    return _text(form, key).strip().lower() in ("1", "true", "on", "yes")


# --------------------------------------------------------------------------- per app


def pipeline_service(request: Request) -> PipelineService:
    """The app's pipeline service (made on first use)."""
    state = request.app.state
    service = getattr(state, "pipeline_service", None)
    if service is None:
        with _lock:
            service = getattr(state, "pipeline_service", None)
            if service is None:
                service = _make(state)
                state.pipeline_service = service
    return service


def _make(state: Any) -> PipelineService:
    from keel.server.executor import server_executor
    from keel.server.pipelines.jobs import PipelineJobs

    settings, client = state.settings, state.client
    work_dir = Path(settings.work_dir or client.settings.cache_dir / "server")
    store = PipelineStore(work_dir, max_upload_bytes(settings))
    jobs = PipelineJobs(
        server_executor(state), store, client, settings.job_timeout_s, settings.job_memory_mb
    )
    return PipelineService(settings, client, store, jobs)


def max_upload_bytes(settings: ServerSettings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def http_status(exc: Exception) -> int:
    """The HTTP status a refusal of the pipeline service becomes."""
    from keel.errors import KeelError
    from keel.server.app import status_of

    if isinstance(exc, UploadTooLarge):
        return 413
    return status_of(exc) if isinstance(exc, KeelError) else 400
