"""HTTP plumbing of the prediction API: bodies, limits, JSON answers and error shapes.

Every error a client can cause is answered as JSON ``{"message": …}`` with a 4xx status:
400 malformed JSON, 413 body too large, 415 unsupported content type, 422 schema violations
(with ``details: [{"field", "problem"}]`` listing every bad field). Model failures are 500
with the request id and no traceback (the traceback is logged).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keel.serving.inputs import describe_problems

JSON_TYPE = "application/json"


class ApiError(Exception):
    """An answer other than 200: status, one-line message, optional field details."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[dict[str, str]] | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.request_id = request_id
        self.headers = headers

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message}
        if self.details is not None:
            body["details"] = self.details
        if self.request_id is not None:
            body["request_id"] = self.request_id
        return json_response(body, self.status, self.headers)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status, headers, media_type=JSON_TYPE)


def media_type(request: Request) -> str:
    """The request's media type without parameters ("" when not given)."""
    value = request.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind in ("", JSON_TYPE) or kind.endswith("+json")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) one larger than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length is not a number: {declared!r}") from None
        if size > limit:
            raise _too_large(size, limit)
        body = await request.body()
        if len(body) > limit:
            raise _too_large(len(body), limit)
        return body
    chunks = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(total, limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # so request.form() can parse what was read
    return body


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body is {_mb(size)}, over this API's limit of {_mb(limit)} "
        "(api.max_body_mb in keel.yml): send fewer rows per request",
    )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size} bytes"


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``, or a 400 that says where it broke."""
    if not body.strip():
        raise ApiError(400, "the request body is empty: send a JSON object")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 text") from None


def unsupported(kind: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        f"unsupported content type {kind!r}: send {' or '.join(accepted)}",
    )


def invalid(problems: list[dict[str, str]]) -> ApiError:
    """A 422 listing every bad field (the message ``keel predict`` prints too)."""
    return ApiError(422, describe_problems(problems), details=problems)
