"""The MLflow wire protocol as keel speaks it: errors, arguments, answers and routes.

This module owns what every MLflow route shares:

* :class:`MlflowError` and the error shape ``{"error_code": …, "message": …}`` with the HTTP
  status MLflow gives each code (``INVALID_PARAMETER_VALUE`` 400, ``RESOURCE_DOES_NOT_EXIST``
  404, ``RESOURCE_ALREADY_EXISTS`` 400, ``UNAUTHENTICATED`` 401, ``PERMISSION_DENIED`` 403…);
  keel's own errors are translated by :func:`error_code_of`;
* :class:`MlflowRoute`, the route class of every MLflow router: it recognises the caller
  (see :mod:`.auth`) and answers every refusal in MLflow's shape (keel errors, the role
  check's 401/403, unexpected failures as 500);
* :class:`Args`, a request's parameters (its JSON body, or the query string of a GET) read
  with MLflow's messages for missing and malformed values;
* :data:`MESSAGES`, the field types of MLflow's request messages, and :func:`check_message`,
  which checks a request against them before any work, as MLflow's server does (a body that
  fits the proto's types passes; one that does not has each field's type checked, with
  MLflow's ``Invalid value … supplied`` and ``Missing value …`` messages);
* :func:`operation`, which turns a plain function of a :class:`Call` into a route that needs a
  role, runs the function in the thread pool (every store call, every write) and answers
  its dict as JSON.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from keel.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    KeelError,
    NotFound,
    Offline,
    StoreUnavailable,
)
from keel.server.deps import get_client, get_settings, require
from keel.server.guard import GuardedRoute

if TYPE_CHECKING:
    from keel.artifacts import ArtifactStore
    from keel.server.auth import Principal
    from keel.store.sql import SqlStore

log = logging.getLogger("keel.server.mlflow")

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"

#: MLflow's HTTP status of each error code (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS)
HTTP_STATUS = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    BAD_REQUEST: 400,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    INTERNAL_ERROR: 500,
    TEMPORARILY_UNAVAILABLE: 503,
    REQUEST_LIMIT_EXCEEDED: 429,
}
_CODE_OF_STATUS = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    404: ENDPOINT_NOT_FOUND,
    405: ENDPOINT_NOT_FOUND,
    413: INVALID_PARAMETER_VALUE,
    422: INVALID_PARAMETER_VALUE,
    503: TEMPORARILY_UNAVAILABLE,
    429: REQUEST_LIMIT_EXCEEDED,
}
#: keel's refusals and the MLflow code each becomes (first match wins)
_CODE_OF_ERROR: tuple[tuple[type[KeelError], str], ...] = (
    (NotFound, RESOURCE_DOES_NOT_EXIST),
    (Conflict, INVALID_PARAMETER_VALUE),  # a changed param, a deleted run; creates say more
    (InvalidInput, INVALID_PARAMETER_VALUE),
    (AccessDenied, PERMISSION_DENIED),
    (StoreUnavailable, TEMPORARILY_UNAVAILABLE),
    (Offline, TEMPORARILY_UNAVAILABLE),
    (KeelError, INVALID_PARAMETER_VALUE),
)
JSON_TYPE = "application/json"


class MlflowError(Exception):
    """A refusal with an MLflow error code (raised by the translation layer itself)."""

    def __init__(self, message: str, code: str = INVALID_PARAMETER_VALUE) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_code_of(exc: KeelError) -> str:
    """The MLflow error code of a keel error."""
    return next(code for kind, code in _CODE_OF_ERROR if isinstance(exc, kind))


def error_response(request: Request, exc: BaseException) -> Response:
    """Any failure of an MLflow route as ``{"error_code", "message"}`` with MLflow's status."""
    if isinstance(exc, MlflowError):
        code, message = exc.code, exc.message
    elif isinstance(exc, KeelError):
        code, message = error_code_of(exc), _one_line(exc)
    elif isinstance(exc, StarletteHTTPException):
        code = _CODE_OF_STATUS.get(exc.status_code, BAD_REQUEST)
        message = str(exc.detail)
    elif isinstance(exc, RequestValidationError):
        code = INVALID_PARAMETER_VALUE
        message = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors()) or "invalid"
    else:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        code = INTERNAL_ERROR
        message = f"internal error ({type(exc).__name__}); see the keel server log"
    body = json.dumps({"error_code": code, "message": message}).encode()
    # an HTTPException's own headers: a 429's Retry-After
    headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
    return Response(
        body, status_code=HTTP_STATUS.get(code, 400), media_type=JSON_TYPE, headers=headers
    )


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:1000] if lines else type(exc).__name__


class MlflowRoute(GuardedRoute):
    """A route that speaks MLflow's error shape and knows callers by token or password."""

    mlflow_credentials = True

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def mlflow_handler(request: Request) -> Response:
            from keel.server.mlflow.auth import login

            try:
                await login(request)
                return await handler(request)
            except Exception as exc:
                return error_response(request, exc)

        return mlflow_handler


def new_router() -> APIRouter:
    """An empty router whose routes answer like MLflow's server."""
    return APIRouter(route_class=MlflowRoute)


# --- arguments -------------------------------------------------------------------------------


_API_DOCS = "See the API docs for more information about request parameters."


def _missing(name: str) -> MlflowError:
    return MlflowError(f"Missing value for required parameter '{name}'. {_API_DOCS}")


def shown(value: Any) -> str:
    """A value as MLflow's messages show it: its compact JSON (``"foo"``, ``31``, ``9.0``)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= 100 else text[:97] + "..."


def _invalid(name: str, value: Any, expected: str) -> MlflowError:
    return MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: {expected}.")


# --- request messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A field of an MLflow request message.

    ``kind`` is its proto type as JSON carries it: ``string``, ``int`` (int64, also sent as
    text), ``float`` (double: a number, or ``"NaN"``/``"Infinity"``), ``bool``, ``enum`` (a
    name or a number), ``list`` (repeated messages) or ``strings`` (repeated strings).
    ``required`` and ``checked`` are MLflow's schema for the route: a required field must be
    present and not empty; a checked field has its type checked when the body does not fit
    the proto (a field of the proto that MLflow's schema leaves out is not).
    """

    kind: str
    required: bool = False
    checked: bool = True


_INT_TEXT = re.compile(r"-?\d+")
_FLOAT_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})


def _fits_proto(kind: str, value: Any) -> bool:
    """Whether protobuf's JSON parser takes ``value`` for a field of ``kind``."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool) or value in ("true", "false")
    if isinstance(value, bool):
        return False  # protobuf refuses true/false for numbers
    if kind == "int":
        return (
            isinstance(value, int)
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and bool(_INT_TEXT.fullmatch(value)))
        )
    if kind == "float":
        return isinstance(value, int | float) or (
            isinstance(value, str) and (value in _FLOAT_WORDS or _parses(float, value))
        )
    if kind == "enum":
        return isinstance(value, int | str)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"unknown field kind {kind!r}")


def _passes_check(kind: str, value: Any) -> bool:
    """MLflow's type check of a field (``_assert_string``, ``_assert_intlike``…), which is
    looser than the proto for numbers: ``"59"`` and ``5.5`` are int-like."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "enum"):
        return _parses(int, value)
    if kind == "float":
        return _parses(float, value)
    if kind == "list":
        return isinstance(value, list)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"unknown field kind {kind!r}")


def _parses(kind: type, value: Any) -> bool:
    try:
        kind(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _schema(**fields: Field) -> dict[str, Field]:
    return fields


_S, _RS = Field("string"), Field("string", required=True)
_I, _F, _L = Field("int"), Field("float"), Field("list")

#: MLflow's request messages (service.proto) and its server's schema for each route
MESSAGES: dict[str, dict[str, Field]] = {
    "CreateExperiment": _schema(name=_RS, artifact_location=_S, tags=_L),
    "GetExperiment": _schema(experiment_id=_RS),
    "GetExperimentByName": _schema(experiment_name=_RS),
    "DeleteExperiment": _schema(experiment_id=_RS),
    "RestoreExperiment": _schema(experiment_id=_RS),
    "UpdateExperiment": _schema(experiment_id=_RS, new_name=_RS),
    "SetExperimentTag": _schema(experiment_id=_RS, key=_RS, value=_S),
    "DeleteExperimentTag": _schema(experiment_id=_RS, key=_RS),
    "SearchExperiments": _schema(
        view_type=Field("enum"),
        max_results=_I,
        order_by=Field("strings"),
        filter=_S,
        page_token=_S,
    ),
    "CreateRun": _schema(
        experiment_id=_S,
        user_id=Field("string", checked=False),
        start_time=_I,
        tags=Field("list", checked=False),
        run_name=_S,
    ),
    "UpdateRun": _schema(
        run_id=_RS,
        run_uuid=Field("string", checked=False),
        status=Field("enum", checked=False),
        end_time=_I,
        run_name=_S,
    ),
    "GetRun": _schema(run_id=_RS, run_uuid=Field("string", checked=False)),
    "DeleteRun": _schema(run_id=_RS),
    "RestoreRun": _schema(run_id=_RS),
    "LogMetric": _schema(
        run_id=_RS,
        run_uuid=Field("string", checked=False),
        key=_RS,
        value=Field("float", required=True),
        timestamp=Field("int", required=True),
        step=_I,
        model_id=_S,
        dataset_name=_S,
        dataset_digest=_S,
    ),
    "LogParam": _schema(run_id=_RS, run_uuid=Field("string", checked=False), key=_RS, value=_S),
    "SetTag": _schema(run_id=_RS, run_uuid=Field("string", checked=False), key=_RS, value=_S),
    "DeleteTag": _schema(run_id=_RS, key=_RS),
    "LogBatch": _schema(run_id=_RS, metrics=_L, params=_L, tags=_L),
    "SearchRuns": _schema(
        experiment_ids=Field("strings", checked=False),
        filter=_S,
        run_view_type=Field("enum", checked=False),
        max_results=_I,
        order_by=Field("strings"),
        page_token=Field("string", checked=False),
    ),
    "LogInputs": _schema(run_id=_RS, datasets=_L, models=_L),
    "LogOutputs": _schema(run_id=_RS, models=Field("list", required=True)),
    "GetMetricHistory": _schema(
        run_id=_RS,
        run_uuid=Field("string", checked=False),
        metric_key=_RS,
        page_token=_S,
        max_results=Field("int", checked=False),
    ),
    "GetMetricHistoryBulkInterval": _schema(
        run_ids=Field("strings", required=True),
        metric_key=_RS,
        start_step=_I,
        end_step=_I,
        max_results=_I,
    ),
}


def check_message(data: Mapping[str, Any], fields: Mapping[str, Field], query: bool) -> None:
    """Refuse a request whose parameters do not fit the message, as MLflow's server does.

    A body that protobuf's JSON parser takes passes the type checks; otherwise each checked
    field present is type-checked. Required fields must then be present and not empty
    (``run_id`` may come as the older ``run_uuid``). A query string's repeated fields are
    lists already (a name given once is made a list of one), as MLflow's server reads them.
    """
    if query:
        for name, spec in fields.items():
            value = data.get(name)
            if spec.kind == "strings" and isinstance(value, str):
                data[name] = [value]  # type: ignore[index]
    fits = all(
        _fits_proto(spec.kind, data[name])
        for name, spec in fields.items()
        if data.get(name) is not None
    )
    for name, spec in fields.items():
        if name not in data and not spec.required:
            continue
        value = data.get(name)
        if name == "run_id" and value is None:
            value = data.get("run_uuid")
        if value is not None and not fits and spec.checked and not _passes_check(spec.kind, value):
            raise MlflowError(
                f"Invalid value {shown(value)} for parameter '{name}' supplied:  Hint: Value "
                f"was of type '{_json_type(value)}'. {_API_DOCS}"
            )
        if spec.required and (value is None or value == ""):
            raise _missing(name)


def _json_type(value: Any) -> str:
    return type(value).__name__


class Args:
    """A request's parameters: its JSON body, or its query string (GET).

    Query-string values are text, so the readers convert numbers and booleans; a name given
    more than once in a query string is a list.
    """

    def __init__(self, data: Mapping[str, Any], size: int = 0) -> None:
        self.data = data
        self.size = size  # bytes of the body (MLflow caps a log-batch request at 1 MB)

    def has(self, name: str) -> bool:
        return self.data.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False, default: str | None = None) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise _missing(name)
            return default
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. a version number sent as a number
        if not isinstance(value, str):
            raise _invalid(name, value, "expected a string")
        return value

    def run_id(self) -> str:
        """``run_id``, or the deprecated ``run_uuid`` older clients send."""
        value = self.text("run_id") or self.text("run_uuid")
        if not value:
            raise _missing("run_id")
        return str(value)

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> Any:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise _missing(name)
            return default
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, bool):
            raise _invalid(name, value, "expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _invalid(name, value, "expected an integer")

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _invalid(name, value, "expected true or false")

    def strings(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise _invalid(name, value, "expected a list of strings")

    def objects(self, name: str) -> list[dict[str, Any]]:
        value = self.data.get(name)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
        raise _invalid(name, value, "expected a list of objects")

    def key_values(self, name: str) -> dict[str, str]:
        """A list of ``{"key", "value"}`` objects (tags, params) as a dict."""
        found: dict[str, str] = {}
        for index, item in enumerate(self.objects(name)):
            key = item.get("key")
            if not isinstance(key, str) or not key:
                raise _missing(f"{name}[{index}].key")
            found[key] = text_value(item.get("value"), f"{name}[{index}].value")
        return found


def text_value(value: Any, name: str) -> str:
    """A tag or param value: MLflow sends text (a missing value is the empty text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _invalid(name, value, "expected a string")


def number(value: Any, name: str) -> float:
    """A metric value: a JSON number, or proto JSON's ``"NaN"``, ``"Infinity"``…"""
    if isinstance(value, bool) or value is None:
        raise _invalid(name, value, "expected a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _invalid(name, value, "expected a number")


def integer(value: Any, name: str, default: int = 0) -> int:
    """An int64 field of a list item (proto JSON may send it as text)."""
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _invalid(name, value, "expected an integer")


def float_json(value: float) -> float | str:
    """A float as proto JSON writes it: NaN and the infinities are words."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


async def read_args(request: Request) -> Args:
    """The parameters of a request: the query string of a GET, else its JSON body."""
    if request.method == "GET":
        query = request.query_params
        data: dict[str, Any] = {}
        for key in query:
            values = query.getlist(key)
            data[key] = values[0] if len(values) == 1 else values
        return Args(data)
    body = await request.body()
    if not body.strip():
        return Args({}, 0)
    from keel.server.jsonlimits import loads_bounded

    depth = request.app.state.settings.max_json_depth
    try:  # in a worker thread: a large body would hold up every other request
        data = await run_in_threadpool(loads_bounded, body, depth)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MlflowError(f"Malformed JSON request body: {exc}") from None
    if not isinstance(data, dict):
        raise MlflowError("The request body must be a JSON object")
    return Args(data, len(body))


# --- calls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One MLflow request being answered: its parameters and the server it reached."""

    request: Request
    args: Args = field(default_factory=lambda: Args({}))

    @property
    def store(self) -> SqlStore:
        """The server's metadata store (the SQL store: it has the deletes and renames)."""
        return get_client(self.request).store  # type: ignore[return-value]

    @property
    def artifacts(self) -> ArtifactStore:
        return get_client(self.request).artifact_store

    @property
    def project(self) -> str:
        """The keel project MLflow's experiments and registered models live in."""
        return get_settings(self.request).project

    @property
    def principal(self) -> Principal:
        return self.request.state.principal


def answer(value: Any) -> Response:
    """A dict (or nothing) as MLflow's JSON answer (always 200, as its client expects)."""
    return Response(b"{}" if value is None else encode_json(value), media_type=JSON_TYPE)


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON bytes.

    orjson writes a 1,000-run ``search_runs`` page (1.7 MB) in ~3 ms where the standard
    library takes ~40 ms, a fifth of the request's server CPU under load. It refuses integers
    beyond 64 bits, which the standard library writes, so those answers take the slow path.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def operation(
    router: APIRouter, method: str, path: str, role: str, message: str | None = None
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register ``fn(call) -> dict | None`` as ``method path``, callable with ``role``.

    ``message`` names the request's entry in :data:`MESSAGES`: its parameters are checked
    against it on the event loop, before the function is given any work.

    The function and the JSON of its answer run in the thread pool, every one of them: a
    write to SQLite may wait up to the busy timeout for another writer's lock, a search may
    run up to the query budget and its answer be megabytes, and on the event loop any of
    them would hold up every other request (``/healthz`` included). Measured on a 2-core
    machine: a ``log_metric`` call took 3.0 ms through the pool, 3.9 ms on the event loop.
    """

    fields = MESSAGES[message] if message is not None else None

    def register(fn: Callable[[Call], Any]) -> Callable[[Call], Any]:
        def respond(call: Call) -> Response:
            return answer(fn(call))

        async def endpoint(request: Request) -> Response:
            args = await read_args(request)
            if fields is not None:
                check_message(args.data, fields, query=request.method == "GET")
            return await run_in_threadpool(respond, Call(request, args))

        endpoint.__doc__ = fn.__doc__
        endpoint.message_fields = fields  # type: ignore[attr-defined]  # read by the fuzz tests
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            dependencies=[Depends(require(role))],
            include_in_schema=False,
            name=f"mlflow.{fn.__name__}",
        )
        return fn

    return register
