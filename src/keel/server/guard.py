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


#: what a multipart form adds around its files (field names, boundaries, a requirements
#: file): the files themselves are held to ``max_upload_mb`` as they are copied
FORM_OVERHEAD_BYTES = _MB


@dataclass(frozen=True)
class BodyLimit:
    """How many bytes a request's body may have, and the setting that says so."""

    size: int
    setting: str
    form: bool = False  # a multipart form: ``size`` holds FORM_OVERHEAD_BYTES for its fields

    def refusal(self, sent: int | None = None) -> HTTPException:
        """413: a body over this limit (by its length, or counted as it came)."""
        amount = f"{size_text(sent)} sent" if sent is not None else "more sent"
        if self.form:
            files = size_text(self.size - FORM_OVERHEAD_BYTES)
            limit = f"{files} of files (server.{self.setting}) and 1 MB of form fields"
        else:
            limit = f"{size_text(self.size)} (server.{self.setting})"
        return HTTPException(
            413,
            f"the request body is too large: {amount}, the limit is {limit}: send less, or "
            "ask the server's admin to raise it",
        )


def size_text(n: float) -> str:
    """A byte count for people: ``50 MB``, ``51.2 KB``, ``300 bytes``."""
    if n >= _MB:
        return f"{round(n / _MB, 1):g} MB"
    if n >= 1024:
        return f"{round(n / 1024, 1):g} KB"
    return f"{int(n)} bytes"


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
) -> BodyLimit:
    """The body limit of this request's caller, after refusing (401/403) one without ``role``.

    Raises:
        HTTPException: the caller may not call this route, or declared a body over the limit.
    """
    limits = _limits(request)
    if role is None:  # an open route (the login form): anyone may send to it
        return BodyLimit(limits.anonymous, "max_anonymous_request_kb")
    principal = await _identify(request, is_mlflow=is_mlflow)
    from keel.server.auth import ANONYMOUS

    if not principal.may(role):  # as require() would answer, but before the body
        from keel.server.deps import role_refusal

        raise role_refusal(principal, role)
    if principal is ANONYMOUS:
        return BodyLimit(limits.anonymous, "max_anonymous_request_kb")
    if artifact:
        return BodyLimit(limits.artifact, "max_artifact_mb")
    content_type = request.headers.get("content-type", "").lower()
    if not content_type or content_type.startswith(_PARSED_TYPES):
        return BodyLimit(limits.parsed, "max_request_mb")
    if content_type.startswith("multipart/form-data"):
        return BodyLimit(limits.upload + FORM_OVERHEAD_BYTES, "max_upload_mb", form=True)
    return BodyLimit(limits.upload, "max_upload_mb")


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


def _counting(receive: Receive, limit: BodyLimit) -> Callable[[], Any]:
    """``receive`` that refuses (413) a body once more than ``limit`` bytes have come."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit.size:
                raise _closing(limit.refusal())
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
                try:
                    limit = await body_limit(
                        request, role, is_mlflow=self.mlflow_credentials, artifact=artifact
                    )
                    declared = _content_length(request.scope)
                    if declared is not None and declared > limit.size:
                        raise limit.refusal(declared)
                except HTTPException as exc:
                    raise _closing(exc) from None
                receive = _counting(receive, limit)
            return await handler(_BoundedJSONRequest(request.scope, receive))

        return guarded_handler


def _closing(refusal: HTTPException) -> HTTPException:
    """``refusal``, ending the connection after it: the body left unread would otherwise be
    received and parsed, to the last byte, to find where the next request starts."""
    headers = {**(refusal.headers or {}), "Connection": "close"}
    return HTTPException(refusal.status_code, refusal.detail, headers=headers)


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
