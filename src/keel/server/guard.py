"""Limits before work: who may send a body, and how big, settled before a byte of it is read.

Every router of the platform server (REST API, web UI, MLflow API) makes its routes with
:class:`GuardedRoute`. For a request that carries a body, once it is routed and before
FastAPI reads the body, the route:

1. recognises the caller (token, MLflow Basic credentials or the session cookie) and refuses
   one without the role the route requires (``require(...)`` in its dependencies) with 401
   or 403;
2. picks the body limit: a caller without credentials (the login form, an anonymous MLflow
   search) gets ``server.max_anonymous_request_kb``, a JSON, form or text body
   ``server.max_request_mb``, an artifact streamed to the store ``server.max_artifact_mb``,
   any other body (a file, a multipart upload) ``server.max_upload_mb``;
3. refuses a declared ``Content-Length`` over the limit with 413 at once, and counts the
   bytes of a body sent without one (chunked), refusing with 413 as soon as it passes the
   limit: nothing over the limit is buffered, spooled to disk or parsed.

A JSON body is then parsed in a worker thread with its nesting bounded by
``server.max_json_depth`` (FastAPI parses on the event loop, without a bound). Requests
without a body are untouched; the principal found here is cached on the request, so the
route's own role check does not look twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.responses import Response
    from starlette.types import Message, Receive, Scope

    from keel.server.settings import ServerSettings

#: content types parsed in memory (JSON, forms, text); any other body is an upload
_PARSED_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/")
_MB = 1024 * 1024
_Endpoint = TypeVar("_Endpoint", bound="Callable[..., Any]")


class BodyTooLarge(HTTPException):
    """413: a body over its limit (raised before reading, or while counting a chunked one)."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            413,
            f"the request body is larger than {_size(limit)}, the most this server accepts "
            f"here (server.{setting}): send less, or ask the server's admin to raise it",
        )


def _size(count: int) -> str:
    if count >= _MB:
        return f"{count / _MB:g} MB"
    return f"{count / 1024:g} KB"


def _has_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return value.strip() not in (b"0", b"")
        if key == b"transfer-encoding":
            return True
    return False


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def required_role(route: APIRoute) -> str | None:
    """The role ``require(...)`` asks for anywhere in the route's dependencies (None: open)."""
    from keel.entities import ROLES

    found: str | None = None
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        role = getattr(dependant.call, "required_role", None)
        if role is not None and (found is None or ROLES.index(role) > ROLES.index(found)):
            found = role
        stack.extend(dependant.dependencies)
    return found


@dataclass(frozen=True)
class BodyLimits:
    """The server's body limits in bytes (from :class:`ServerSettings`)."""

    anonymous: int
    parsed: int
    upload: int
    artifact: int

    @classmethod
    def of(cls, settings: ServerSettings) -> BodyLimits:
        return cls(
            anonymous=int(settings.max_anonymous_request_kb * 1024),
            parsed=int(settings.max_request_mb * _MB),
            upload=int(settings.max_upload_mb * _MB),
            artifact=int(settings.max_artifact_mb * _MB),
        )


def artifact_upload(endpoint: _Endpoint) -> _Endpoint:
    """Mark a route that streams its body to the artifact store: its limit is
    ``server.max_artifact_mb`` (models are large), not ``server.max_upload_mb``."""
    endpoint.keel_artifact_upload = True  # type: ignore[attr-defined]
    return endpoint


async def body_limit(
    request: Request, role: str | None, *, is_mlflow: bool, artifact: bool = False
) -> tuple[int, str]:
    """The body limit of this request's caller, after refusing (401/403) one without ``role``.

    Raises:
        HTTPException: the caller may not call this route, or declared a body over the limit.
    """
    limits = _limits(request)
    if role is None:  # an open route (the login form): anyone may send to it
        return limits.anonymous, "max_anonymous_request_kb"
    principal = await _identify(request, is_mlflow=is_mlflow)
    from keel.server.auth import ANONYMOUS

    if not principal.may(role):  # as require() would answer, but before the body
        who = "anonymous callers" if principal is ANONYMOUS else f"{principal.name!r}"
        raise HTTPException(
            403, f"{who} may not do this: it needs the {role} role ({principal.role} now)"
        )
    if principal is ANONYMOUS:
        return limits.anonymous, "max_anonymous_request_kb"
    if artifact:
        return limits.artifact, "max_artifact_mb"
    content_type = request.headers.get("content-type", "").lower()
    if not content_type or content_type.startswith(_PARSED_TYPES):
        return limits.parsed, "max_request_mb"
    return limits.upload, "max_upload_mb"


def _limits(request: Request) -> BodyLimits:
    state = request.app.state
    found = getattr(state, "body_limits", None)
    if found is None:
        found = state.body_limits = BodyLimits.of(state.settings)
    return found


async def _identify(request: Request, *, is_mlflow: bool) -> Any:
    """Who is calling, as the route's own check would find them (cached on the request)."""
    from keel.server.deps import current_principal

    if is_mlflow:
        from keel.server.mlflow.auth import login

        await login(request)  # MLflow's Basic credentials; a wrong password is a 401 here
    # reads the store (a token, the session's user): off the event loop
    return await run_in_threadpool(current_principal, request)


def _counting(receive: Receive, limit: int, setting: str) -> Callable[[], Any]:
    """``receive`` that refuses (413) a body once more than ``limit`` bytes have come."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, setting)
        return message

    return counted


class GuardedRoute(APIRoute):
    """A route that settles who may send a body, and how big, before reading it; its JSON
    body is parsed in a worker thread, nesting bounded by ``server.max_json_depth`` (FastAPI
    parses on the event loop, with no bound). Every router of the server uses it."""

    #: MLflow's routes know callers by their Basic credentials too
    mlflow_credentials = False

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        role = required_role(self)
        artifact = getattr(self.endpoint, "keel_artifact_upload", False)

        async def guarded_handler(request: Request) -> Response:
            receive = request.receive
            if _has_body(request.scope):
                limit, setting = await body_limit(
                    request, role, is_mlflow=self.mlflow_credentials, artifact=artifact
                )
                declared = _content_length(request.scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit, setting)
                receive = _counting(receive, limit, setting)
            return await handler(_BoundedJSONRequest(request.scope, receive))

        return guarded_handler


class _BoundedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await run_in_threadpool(parse_json_body, self, body)
        return self._json


def parse_json_body(request: Request, body: bytes) -> Any:
    """A JSON body parsed with the server's nesting bound (422 naming it when deeper)."""
    from keel.errors import InvalidInput
    from keel.server.jsonlimits import loads_bounded

    depth = request.app.state.settings.max_json_depth
    try:
        return loads_bounded(body, depth)
    except InvalidInput as exc:  # FastAPI turns any other error into a bare 400
        raise HTTPException(422, str(exc)) from None
