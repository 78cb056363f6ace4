"""The platform server's ASGI app: REST API under ``/api/v1``, the web UI at ``/``, ``/docs``,
and ``/healthz`` (liveness) and ``/readyz`` (readiness: the metadata store answers).

:func:`create_app` wires the parts: the server's own :class:`keel.Client` over its store,
the accounts, signed session cookies, the routers of :mod:`keel.server.api` and
:mod:`keel.server.ui`, the static files (htmx, plotly) and the error handlers that turn
every refusal into a JSON (API) or a page (UI) with one clear line. While the metadata
store's database is out of reach every request that needs it answers 503 saying so, and the
server recovers by itself when it returns (see :mod:`keel.store.engine`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from keel.errors import (
    ArtifactError,
    Conflict,
    ExecutorUnavailable,
    InvalidInput,
    KeelError,
    NotFound,
    Offline,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from keel.server.settings import ServerSettings

log = logging.getLogger("keel.server")

API_PREFIX = "/api/v1"
SESSION_COOKIE = "keel_session"

#: keel's refusals and the HTTP status each becomes
STATUS_OF_ERROR: tuple[tuple[type[KeelError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (StoreUnavailable, 503),
    (ExecutorUnavailable, 503),
    (Offline, 503),
    (ArtifactError, 502),
    (KeelError, 400),
)


def status_of(exc: KeelError) -> int:
    return next(code for kind, code in STATUS_OF_ERROR if isinstance(exc, kind))


def create_app(settings: ServerSettings) -> FastAPI:
    """The platform server for ``settings`` (nothing is opened until the first request)."""
    from keel.server.auth import Accounts
    from keel.store.accounts import AccountStore
    from keel.tracking.client import Client

    app = FastAPI(
        title="keel platform API",
        version=_keel_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.client = Client(
        store=settings.store,
        artifacts=settings.artifacts,
        project=settings.project,
        storage_options=settings.storage_options or None,
    )
    # every read of a request stops at server.query_timeout_s (a 4xx saying so)
    app.state.client.store.query_timeout_s = settings.query_timeout_s
    app.state.accounts = Accounts(AccountStore(settings.store))
    _add_middleware(app, settings)
    _add_error_handlers(app)
    _add_health(app)
    _add_routers(app)
    _add_docs(app)
    return app


def _add_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """The layers every request passes, outermost last (Starlette wraps in reverse order)."""
    from keel.server.sessions import SessionCookies

    app.add_middleware(
        SessionCookies,  # marked Secure over https (or always, with server.secure_cookies)
        secure_always=settings.secure_cookies,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        same_site="lax",
        max_age=14 * 24 * 3600,
    )
    from keel.server.headers import secure_every_answer

    secure_every_answer(app)  # security headers, around everything (500 pages too)


def _keel_version() -> str:
    from keel import __version__

    return __version__


def wants_json(request: Request) -> bool:
    """API paths always answer JSON; UI pages answer HTML unless JSON is asked for.

    Every ``/api/`` path counts, not only ``/api/v1``: a path under MLflow's ``/api/2.0`` or
    ``/api/3.0`` that no route takes (an unknown one, or one with a newline, which Starlette's
    path patterns never match) is refused here, by the app."""
    return request.url.path.startswith(("/api/", "/openapi")) or (
        "application/json" in request.headers.get("accept", "")
    )


def store_message(exc: StoreUnavailable) -> str:
    """The line a 503 answers while the metadata store is out of reach (no credentials)."""
    from keel.store.engine import DatabaseUnreachable

    if isinstance(exc, DatabaseUnreachable):
        return (
            f"the metadata store ({exc.location}) is unreachable: {exc.reason}; retrying on "
            "every request, so this server recovers by itself once the database answers: "
            "check that it is running and reachable from here"
        )
    return _one_line(exc)


#: how long a client might wait before retrying a request the store could not serve
RETRY_AFTER_S = "5"


def _add_error_handlers(app: FastAPI) -> None:
    async def keel_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, KeelError)
        if isinstance(exc, StoreUnavailable):
            return await refusal(
                request, 503, store_message(exc), headers={"Retry-After": RETRY_AFTER_S}
            )
        return await refusal(request, status_of(exc), _one_line(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return await refusal(
            request, exc.status_code, str(exc.detail), getattr(exc, "headers", None)
        )

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "problem": err.get("msg", "invalid"),
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        return await refusal(request, 422, f"invalid request: {message}", details=details)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return await refusal(
            request, 500, f"internal error ({type(exc).__name__}); see the server log"
        )

    app.add_exception_handler(KeelError, keel_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)


async def refusal(
    request: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"message": message}
        if details:
            body["details"] = details
        return JSONResponse(body, status_code=status, headers=headers)
    from keel.server.ui import error_page

    page = await error_page(request, status, message)
    page.headers.update(headers or {})  # Retry-After, Connection: close …
    return page


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:500] if lines else type(exc).__name__


def _add_health(app: FastAPI) -> None:
    """``/healthz`` and ``/readyz``: open to all, since load balancers call them without a
    token; they say nothing but whether the process and the metadata store answer."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Liveness: the process answers (the stores are not asked)."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 when the metadata store answers a query, else 503 saying why."""
        from keel.store.engine import ping

        try:
            ping(request.app.state.settings.store)
        except StoreUnavailable as exc:
            return JSONResponse(
                {"status": "unavailable", "message": store_message(exc)},
                status_code=503,
                headers={"Retry-After": RETRY_AFTER_S},
            )
        return JSONResponse({"status": "ready"})


def _add_routers(app: FastAPI) -> None:
    from keel.server.api import router as api_router
    from keel.server.mlflow import mount as mount_mlflow
    from keel.server.ui import mount_ui

    mount_mlflow(app)  # MLflow's REST API (/api/2.0/mlflow…) for MLflow's own clients
    app.include_router(api_router, prefix=API_PREFIX)
    mount_ui(app)


#: what every refusal of the platform API looks like (see ``refusal``)
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "message": {"type": "string", "description": "what went wrong, in one line"},
        "details": {"description": "what was refused, where it helps (e.g. each invalid field)"},
    },
    "required": ["message"],
}


def _with_keel_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents its 422 as ``{detail: [...]}``; keel answers ``{message, details}``
    (the ``invalid_request`` handler), so the document says that instead."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" in components:
        components["HTTPValidationError"] = ERROR_SCHEMA
        components.pop("ValidationError", None)
    return schema


def _add_docs(app: FastAPI) -> None:
    """``/openapi.json`` and ``/docs`` (Swagger UI 5 from keel's own files: works offline;
    compressed and cached, see :mod:`keel.serving.assets`)."""
    from fastapi.responses import HTMLResponse

    from keel.serving.assets import swagger_files, swagger_page

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(_with_keel_errors(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return swagger_page("keel platform API")

    app.router.routes.append(swagger_files().route())
