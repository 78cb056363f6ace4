"""The prediction API as an ASGI app (FastAPI): resources from ``api:``, the container
contract, health, metadata and Prometheus metrics.

Routes (``<base>`` is ``/<api.name>/v<major of the model label>``):

- ``GET|POST <base>/<resource>`` (query), ``GET <base>/<resource>/{id}`` (id),
  ``POST <base>/<resource>`` multipart (file): the resources declared in ``api:``.
- ``POST /invocations``: one call (``{"metadata", "result"}``) or a batch (``instances``,
  MLflow's ``dataframe_split``/``dataframe_records``/``inputs``, or ``text/csv``;
  ``{"predictions": [...]}``); ``GET /ping``; ``GET /execution-parameters``.
- ``GET /health`` (the process answers), ``/ready`` (model loaded and set up),
  ``/metadata``, ``/metrics`` (Prometheus), ``/openapi.json`` and ``/docs``.

The hot routes are plain Starlette endpoints (no dependency injection on the request path);
the OpenAPI document is built from the same pydantic models that validate requests.
:func:`create_app` is the factory uvicorn workers call; it reads ``KEEL_SERVE_*`` variables.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.models.base import default_invoke_id, invoke_record_name
from keel.serving.http import (
    ApiError,
    invalid,
    is_json,
    json_response,
    media_type,
    parse_json,
    read_body,
    unsupported,
)
from keel.serving.inputs import InvalidInputs, check_inputs, field_problems
from keel.serving.metrics import ServingMetrics
from keel.serving.recorder import RecordingBacklog
from keel.serving.runner import ModelsHung, ModelTimeout
from keel.serving.spec import ResourceSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from fastapi import FastAPI
    from pydantic import BaseModel

    from keel.serving.service import ModelService

log = logging.getLogger("keel.serving")

MLFLOW_FORMS = ("dataframe_split", "dataframe_records", "inputs")


class PredictionApi:
    """The request handlers of one served model."""

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self.spec = service.spec
        self.limit = service.spec.max_body_bytes
        self.metrics = ServingMetrics(service)
        invocations = service.spec.invocations_resource
        self.invocation_model = invocations.input_model if invocations is not None else None
        self._batch_adapters: dict[type, Any] = {}

    # --- predicting and recording -----------------------------------------------------------

    async def call_model(self, resource: str, inputs: Any, started: float) -> tuple[Any, str]:
        """One prediction (batched with concurrent calls when configured); its request id."""
        service = self.service
        if not service.ready:
            raise ApiError(503, "the model is not ready (starting up or shutting down)")
        try:
            if service.batcher is not None:
                result = await service.batcher.predict(inputs)
            else:
                result = await service.run_model(service.predict_one, inputs)
        except ModelsHung as exc:  # the model was not called: nothing to record
            raise ApiError(503, str(exc)) from None
        except Exception as exc:
            # The default id: the model's record_invoke_id may not cope with a failed call.
            request_id = invoke_record_name(default_invoke_id())
            await self.record(
                request_id, resource, inputs, {"error": _one_line(exc)}, started, "error"
            )
            raise self._failure(exc, request_id, resource, "input") from None
        request_id = service.request_id(inputs, result)
        await self.record(request_id, resource, inputs, result, started)
        return result, request_id

    async def call_model_batch(
        self, resource: str, batch: list[Any], started: float
    ) -> tuple[list[Any], str]:
        service = self.service
        if not service.ready:
            raise ApiError(503, "the model is not ready (starting up or shutting down)")
        try:
            results = await service.run_model(service.predict_many, batch)
            if len(results) != len(batch):
                raise ValueError(f"predict_batch returned {len(results)} results for {len(batch)}")
        except ModelsHung as exc:
            raise ApiError(503, str(exc)) from None
        except Exception as exc:
            # Each input is recorded as failed, under its own id; the answer names the first.
            ids = [invoke_record_name(default_invoke_id()) for _ in batch] or [
                invoke_record_name(default_invoke_id())
            ]
            error = {"error": _one_line(exc)}
            for request_id, inputs in zip(ids, batch, strict=False):
                await self.record(request_id, resource, inputs, error, started, "error")
            raise self._failure(exc, ids[0], resource, "batch") from None
        first_id = ""
        for inputs, result in zip(batch, results, strict=True):
            request_id = service.request_id(inputs, result)
            first_id = first_id or request_id
            await self.record(request_id, resource, inputs, result, started)
        return results, first_id or service.request_id(batch, results)

    def _failure(self, exc: Exception, request_id: str, resource: str, what: str) -> ApiError:
        """The model's own answer to its exception (e.g. ML2P's ClientError), else keel's."""
        own = self.service.error_answer(exc) if not isinstance(exc, ModelTimeout) else None
        if own is not None:
            status, body = own
            log.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "model answered %d on %s %s (%s): %s",
                status,
                what,
                request_id,
                resource,
                _one_line(exc),
            )
            return AnswerAs(status, body, {"x-request-id": request_id})
        return _failure(exc, request_id, resource, what)

    async def record(
        self,
        request_id: str,
        resource: str,
        inputs: Any,
        result: Any,
        started: float,
        status: str = "ok",
    ) -> None:
        recorder = self.service.recorder
        if recorder is None:
            return
        record = self.service.record(
            request_id, resource, _recordable(inputs), result, started, status
        )
        assert record is not None
        try:
            if not recorder.submit_nowait(record):
                self.metrics.record_waits.inc()
                await asyncio.to_thread(recorder.submit, record)
        except RecordingBacklog as exc:
            raise ApiError(503, str(exc), request_id=request_id) from None

    # --- validation -------------------------------------------------------------------------

    def validate(self, model: type[BaseModel] | None, raw: Any, prefix: str = "") -> Any:
        try:
            return check_inputs(model, raw, prefix)  # keel predict checks with it too
        except InvalidInputs as exc:
            raise invalid(exc.problems) from None

    def validate_batch(
        self, model: type[BaseModel] | None, rows: list[Any], what: str
    ) -> list[Any]:
        if not rows:  # a model's predict_batch need not cope with no rows at all
            raise invalid([{"field": what, "problem": "no rows: send at least one input"}])
        if model is None:
            return rows
        from pydantic import TypeAdapter, ValidationError

        adapter = self._batch_adapters.get(model)
        if adapter is None:
            adapter = self._batch_adapters[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
        try:
            return [row.model_dump() for row in adapter.validate_python(rows)]
        except ValidationError as exc:
            raise invalid(field_problems(exc.errors(include_url=False), what)) from None

    # --- resources --------------------------------------------------------------------------

    def query_endpoint(self, resource: ResourceSpec) -> Callable[[Request], Awaitable[Response]]:
        model = resource.input_model
        arrays = {n for n, s in (resource.inputs or {}).items() if s.is_array}
        path = f"{self.service.base_path}/{resource.name}"

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            if request.method == "GET":
                raw: Any = query_inputs(request, arrays)
            else:
                kind = media_type(request)
                if not is_json(kind):
                    raise unsupported(kind, ["application/json"])
                raw = parse_json(await read_body(request, self.limit))
            inputs = self.validate(model, raw)
            result, request_id = await self.call_model(path, inputs, started)
            return json_response(result, headers={"x-request-id": request_id})

        return endpoint

    def id_endpoint(self, resource: ResourceSpec) -> Callable[[Request], Awaitable[Response]]:
        assert resource.id is not None
        id_name, id_type = resource.id.name, resource.id.type
        model = resource.input_model
        arrays = {n for n, s in (resource.inputs or {}).items() if s.is_array}
        path = f"{self.service.base_path}/{resource.name}"

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            raw_id = request.path_params[id_name]
            item_id: Any = raw_id
            if id_type == "integer":
                try:
                    item_id = int(raw_id)
                except ValueError:
                    raise invalid(
                        [{"field": id_name, "problem": f"expected an integer id, got {raw_id!r}"}]
                    ) from None
            if request.method == "POST":  # the other inputs as a JSON body
                kind = media_type(request)
                if not is_json(kind):
                    raise unsupported(kind, ["application/json"])
                raw: Any = parse_json(await read_body(request, self.limit))
            else:
                raw = query_inputs(request, arrays)
            extra = self.validate(model, raw) if model else {}
            inputs = {**(extra or {}), id_name: item_id}
            result, request_id = await self.call_model(path, inputs, started)
            return json_response(result, headers={"x-request-id": request_id})

        return endpoint

    def file_endpoint(self, resource: ResourceSpec) -> Callable[[Request], Awaitable[Response]]:
        model = resource.input_model
        arrays = {n for n, s in (resource.inputs or {}).items() if s.is_array}
        field = resource.file
        path = f"{self.service.base_path}/{resource.name}"

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            kind = media_type(request)
            if kind != "multipart/form-data":
                raise unsupported(kind, ["multipart/form-data"])
            await read_body(request, self.limit)
            try:
                form = await request.form(max_part_size=self.limit)
            except Exception as exc:  # python-multipart's parse errors
                raise ApiError(400, f"malformed multipart body: {_one_line(exc)}") from None
            try:
                upload = form.get(field)
                if upload is None or isinstance(upload, str):
                    raise invalid(
                        [{"field": field, "problem": "a file upload is required in this field"}]
                    )
                fields = {}
                for key, value in form.multi_items():
                    if key == field:
                        continue
                    if not isinstance(value, str):
                        raise invalid(
                            [{"field": key, "problem": "expected a form field, not a file"}]
                        )
                    if key in arrays:
                        fields.setdefault(key, []).append(value)
                    else:
                        fields[key] = value
                inputs = self.validate(model, fields) if model else fields
                content = await upload.read()
                inputs = {
                    **inputs,
                    field: UploadedFile(content, upload.filename, upload.content_type),
                }
                result, request_id = await self.call_model(path, inputs, started)
            finally:
                await form.close()
            return json_response(result, headers={"x-request-id": request_id})

        return endpoint

    # --- the container contract ---------------------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        started = time.perf_counter()
        kind = media_type(request)
        body = await read_body(request, self.limit)
        if kind in ("text/csv", "application/csv"):
            rows = self.validate_batch(self.invocation_model, csv_records(body), "rows")
            results, request_id = await self.call_model_batch("/invocations", rows, started)
            answer = self.service.batch_answer(results)
            return json_response(answer, headers={"x-request-id": request_id})
        if not is_json(kind):
            raise unsupported(kind, ["application/json", "text/csv"])
        payload = parse_json(body)
        rows, what = batch_rows(payload)
        if rows is None:
            inputs = self.validate(self.invocation_model, payload)
            result, request_id = await self.call_model("/invocations", inputs, started)
            body_out = {"metadata": self.service.call_metadata(), "result": result}
            return json_response(body_out, headers={"x-request-id": request_id})
        rows = self.validate_batch(self.invocation_model, rows, what)
        results, request_id = await self.call_model_batch("/invocations", rows, started)
        answer = self.service.batch_answer(results)
        return json_response(answer, headers={"x-request-id": request_id})

    async def ping(self, request: Request) -> Response:
        if not self.service.ready:
            return json_response({"status": "not ready"}, 503)
        if self.service.runner.saturated:
            return json_response(
                {"status": "not ready", "message": self.service.runner.saturated_message()}, 503
            )
        answer = self.service.ping_answer()  # a model may describe itself (ML2P does)
        return Response(b"", 200) if answer is None else json_response(answer)

    async def execution_parameters(self, request: Request) -> Response:
        batching = self.spec.batching
        return json_response(
            {
                "MaxConcurrentTransforms": 1,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": max(1, int(self.spec.max_body_mb)),
                "MicroBatching": batching.enabled,
                "MaxBatchSize": batching.max_batch_size if batching.enabled else 1,
            }
        )

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        runner = self.service.runner
        if not self.service.ready:
            return json_response({"status": "not ready", "message": "model not loaded"}, 503)
        if runner.saturated:
            body = {"status": "not ready", "message": runner.saturated_message()}
            return json_response({**body, "hung_calls": runner.hung}, 503)
        return json_response(
            {
                "status": "ready",
                "model": self.service.model,
                "version": self.service.version,
                "hung_calls": runner.hung,
            }
        )

    async def metadata(self, request: Request) -> Response:
        return json_response(self.service.metadata())

    async def prometheus(self, request: Request) -> Response:
        data, content_type = self.metrics.render()
        return Response(data, 200, media_type=content_type)

    # --- routing ------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        wrap = self.metrics.instrument
        routes = []
        for resource in self.spec.resources:
            path = f"{self.service.base_path}/{resource.name}"
            if resource.kind == "query":
                routes.append(
                    Route(path, wrap(path, self.query_endpoint(resource)), methods=["GET", "POST"])
                )
            elif resource.kind == "id":
                assert resource.id is not None
                full = f"{path}/{{{resource.id.name}}}"
                routes.append(
                    Route(full, wrap(full, self.id_endpoint(resource)), methods=["GET", "POST"])
                )
            else:
                routes.append(
                    Route(path, wrap(path, self.file_endpoint(resource)), methods=["POST"])
                )
        routes += [
            Route("/invocations", wrap("/invocations", self.invocations), methods=["POST"]),
            Route("/ping", wrap("/ping", self.ping), methods=["GET"]),
            Route("/execution-parameters", self.execution_parameters, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metadata", self.metadata, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ]
        if self.spec.root_path is not None:
            # Last: a resource or contract route of the same path is never shadowed.
            static = static_endpoint(Path(self.spec.root_path) / "static")
            routes.append(Route("/static/{path:path}", static, methods=["GET", "HEAD"]))
        return routes


def static_endpoint(folder: Path) -> Callable[[Request], Awaitable[Response]]:
    """Files of ``folder`` (``api.root_path``'s ``static/``, ML Launchpad's demo pages) by
    their relative path; a path leading outside it, or to no file, is a 404."""
    from starlette.responses import FileResponse

    from keel.paths import unsafe_reason

    root = folder.resolve()

    async def endpoint(request: Request) -> Response:
        name = request.path_params["path"]
        missing = ApiError(404, f"no such resource: {request.url.path}")
        if unsafe_reason(name) is not None:
            raise missing
        target = (root / name).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise missing
        return FileResponse(target)

    return endpoint


class AnswerAs(ApiError):
    """An answer the model chose for its own exception: status and JSON body as they are."""

    def __init__(self, status: int, body: Any, headers: dict[str, str]) -> None:
        super().__init__(status, f"the model answered {status}", headers=headers)
        self.body = body

    def response(self) -> Response:
        return json_response(self.body, self.status, self.headers)


class UploadedFile:
    """An uploaded file handed to the model: read it like a file (``read``, ``seek``…).

    Attributes:
        filename: the name the client gave (never a path to open on this machine).
        content_type: the media type the client declared.
        size: bytes uploaded.
    """

    def __init__(self, content: bytes, filename: str | None, content_type: str | None) -> None:
        import io

        self._buffer = io.BytesIO(content)
        self.filename = filename or "upload"
        self.name = self.filename
        self.content_type = content_type or "application/octet-stream"
        self.size = len(content)

    @property
    def stream(self) -> Any:
        """The content as a binary file (what ML Launchpad's ``FileStorage.stream`` was)."""
        return self._buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)

    def __iter__(self) -> Any:
        return iter(self._buffer)

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {self.size} bytes)"

    def describe(self) -> dict[str, Any]:
        import hashlib

        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": hashlib.sha256(self._buffer.getvalue()).hexdigest(),
        }


def _recordable(inputs: Any) -> Any:
    if isinstance(inputs, dict) and any(isinstance(v, UploadedFile) for v in inputs.values()):
        return {k: v.describe() if isinstance(v, UploadedFile) else v for k, v in inputs.items()}
    return inputs


def query_inputs(request: Request, arrays: set[str]) -> dict[str, Any]:
    """Query parameters as inputs; repeated parameters make an array input's list."""
    inputs: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in arrays:
            inputs.setdefault(key, []).append(value)
        else:
            inputs[key] = value
    return inputs


def batch_rows(payload: Any) -> tuple[list[Any] | None, str]:
    """The rows of a batch body (and how to name them in errors); None for one call."""
    if isinstance(payload, list):
        return payload, "rows"
    if not isinstance(payload, dict):
        raise invalid([{"field": "(body)", "problem": "expected a JSON object or array"}])
    if "instances" in payload:
        rows = payload["instances"]
        if not isinstance(rows, list):
            raise invalid([{"field": "instances", "problem": "expected a list of inputs"}])
        return rows, "instances"
    forms = [k for k in MLFLOW_FORMS if k in payload]
    if not forms:
        return None, ""
    if len(forms) > 1:
        raise ApiError(400, f"send one of {', '.join(MLFLOW_FORMS)}, not {' and '.join(forms)}")
    unknown = sorted(set(payload) - {forms[0]})
    if unknown:
        raise ApiError(
            400,
            f"unsupported key{'s' if len(unknown) > 1 else ''} beside {forms[0]}: "
            f"{', '.join(unknown)} (keel models take no inference params)",
        )
    form, value = forms[0], payload[forms[0]]
    if form == "dataframe_records":
        if not isinstance(value, list):
            raise invalid([{"field": form, "problem": "expected a list of records"}])
        return value, form
    if form == "dataframe_split":
        return _split_rows(value), form
    return _tensor_rows(value), form


def _split_rows(value: Any) -> list[Any]:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise invalid(
            [{"field": "dataframe_split", "problem": "expected {columns: [...], data: [[...]]}"}]
        )
    columns = value.get("columns")
    data = value["data"]
    if columns is None:
        return data
    if not isinstance(columns, list):
        raise invalid([{"field": "dataframe_split.columns", "problem": "expected a list"}])
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise invalid(
                [
                    {
                        "field": f"dataframe_split.data[{i}]",
                        "problem": f"expected a list of {len(columns)} values (one per column)",
                    }
                ]
            )
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def _tensor_rows(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # columnar: {"x": [1, 2], "y": [3, 4]}
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise invalid(
                [{"field": "inputs", "problem": "columnar inputs need lists of equal length"}]
            )
        names = list(value)
        return [dict(zip(names, row, strict=True)) for row in zip(*value.values(), strict=True)]
    raise invalid([{"field": "inputs", "problem": "expected a list or an object of columns"}])


def csv_records(body: bytes) -> list[dict[str, Any]]:
    import io

    import pandas as pd

    from keel.data.helpers import to_plain_python

    if not body.strip():
        raise ApiError(400, "the CSV body is empty: send a header line and rows")
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:
        raise ApiError(400, f"malformed CSV: {_one_line(exc)}") from None
    return [to_plain_python(r) for r in frame.to_dict(orient="records")]


def _failure(exc: Exception, request_id: str, resource: str, what: str) -> ApiError:
    """The answer to an exception from model code: its refusal, a 504 when it ran past
    ``api.timeout_s``, else a logged 500."""
    if isinstance(exc, ModelTimeout):
        log.warning("model call on %s %s (%s): %s", what, request_id, resource, exc)
        return ApiError(504, str(exc), request_id=request_id)
    refusal = _model_refusal(exc, request_id)
    if refusal is not None:
        return refusal
    log.exception("model code failed on %s %s (%s)", what, request_id, resource)
    return ApiError(
        500,
        f"the model failed on this {what} ({type(exc).__name__}); "
        "the server log has the details under this request id",
        request_id=request_id,
    )


def _model_refusal(exc: Exception, request_id: str) -> ApiError | None:
    """Model code may refuse an input on purpose: ``keel.errors.NotFound`` is a 404 and
    ``keel.errors.InvalidInput`` a 422, each with the model's own message."""
    from keel.errors import InvalidInput, NotFound

    if isinstance(exc, NotFound):
        return ApiError(404, _one_line(exc), request_id=request_id)
    if isinstance(exc, InvalidInput):
        return ApiError(422, _one_line(exc), details=[], request_id=request_id)
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def build_app(service: ModelService, *, freeze_heap: bool = False) -> FastAPI:
    """The ASGI app serving ``service`` (started and stopped by the app's lifespan).

    ``freeze_heap`` (server processes only) moves everything alive once the model is set up
    into the collector's permanent generation: a full collection over pandas, scikit-learn and
    the model otherwise takes 30-80 ms, a stall that lands on whichever request triggers it.
    """
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from keel.serving.openapi import add_docs, openapi_document

    api = PredictionApi(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        await service.start_batching()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        log.info(
            "serving %s version %s at %s (pid %d)",
            service.model,
            service.version,
            service.base_path,
            os.getpid(),
        )
        try:
            yield
        finally:
            await service.stop_batching()
            await asyncio.to_thread(service.close)
            log.info("stopped serving %s version %s", service.model, service.version)

    app = _app_class()(
        title=f"{service.api_name} prediction API",
        version=service.label or str(service.version),
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.api = api
    app.router.routes.extend(api.routes())
    document = openapi_document(service)
    app.openapi = lambda: document  # type: ignore[method-assign]
    add_docs(app, document)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {
            404: f"no such resource: {request.url.path}",
            405: (f"{request.method} is not allowed on {request.url.path}"),
        }.get(exc.status_code, str(exc.detail))
        return json_response({"message": message}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return json_response(
            {"message": f"internal error ({type(exc).__name__}); see the server log"}, 500
        )

    return app


@functools.cache
def _app_class() -> type[FastAPI]:
    """FastAPI with Starlette's own request path (made on first use: fastapi is heavy).

    Every route of the prediction API is a plain Starlette route, so FastAPI's additions
    to the request path do nothing for it but cost: a check per request of whether its
    OpenTelemetry support is configured (environment look-ups), and three more middleware
    layers (telemetry, its own body limit, an exit stack for its dependencies). Measured
    on one-row predictions, they were about 6% of the event loop's time per request. The
    app keeps FastAPI's lifespan handling and everything else.
    """
    from fastapi import FastAPI
    from starlette.applications import Starlette

    class PredictionApp(FastAPI):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                await Starlette.__call__(self, scope, receive, send)
            else:
                await super().__call__(scope, receive, send)

        def build_middleware_stack(self) -> Any:
            # Starlette's: server errors, user middleware, exception handlers, router
            return Starlette.build_middleware_stack(self)

    return PredictionApp


def create_app() -> FastAPI:
    """The factory each uvicorn worker calls: the model from ``KEEL_SERVE_*`` variables."""
    from keel.serving.service import open_service

    _configure_logging()
    # The invocation writer thread serialises batches; a shorter GIL switch interval keeps
    # it from holding up the event loop for the default 5 ms at a time.
    sys.setswitchinterval(0.001)
    timeout = os.environ.get("KEEL_SERVE_TIMEOUT")  # keel serve --timeout
    service = open_service(
        os.environ.get("KEEL_SERVE_REF") or None,
        os.environ.get("KEEL_SERVE_CONFIG") or None,
        timeout_s=float(timeout) if timeout else None,
    )
    return build_app(service, freeze_heap=True)


def _configure_logging() -> None:
    level = os.environ.get("KEEL_LOG_LEVEL", "INFO").upper()
    logger = logging.getLogger("keel")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
