"""Limits before work: a body is never read for a caller who may not send it, nor over its limit.

The app is called at the ASGI level with a ``receive`` that counts what the server asked
for, so "refused before reading" is checked, not assumed: for every write route of the
platform API, the web UI and the MLflow-compatible API (enumerated from the app, as in
test_routes.py), an anonymous caller declaring a 100 MB body is refused without one byte
being read; a logged-in caller's body over its limit is a 413 naming the setting, also
unread; a body sent without a length (chunked) is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from keel.server.app import create_app
from keel.server.settings import ServerSettings
from server.test_route_roles import PASSWORD, WriteRoute, write_routes

MB = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    bytes_read: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Body:
    """A body offered to the server in ``chunk``-sized pieces, counting what it takes."""

    size: int
    chunk: int = 64 * 1024
    declared: bool = True  # send Content-Length (else the body comes chunked)
    content: bytes = b""
    read: int = 0
    chunks: int = 0
    pieces: list[bytes] = field(default_factory=list)

    def next_piece(self) -> tuple[bytes, bool]:
        if self.content:
            piece, self.content = self.content, b""
            self.read += len(piece)
            self.chunks += 1
            return piece, False
        left = self.size - self.read
        piece = b" " * min(self.chunk, left)
        self.read += len(piece)
        self.chunks += 1
        return piece, self.read < self.size


def call(
    app: FastAPI,
    method: str,
    path: str,
    body: Body,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Answer:
    """One request at the ASGI level; ``body`` records how much of it the server read."""
    sent: list[dict[str, Any]] = []
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body.content:
        body.size = len(body.content)
    if body.declared:
        raw_headers.append((b"content-length", str(body.size).encode()))
    else:
        raw_headers.append((b"transfer-encoding", b"chunked"))
    raw_headers.append((b"host", b"testserver"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            await asyncio.sleep(3600)
        piece, more = body.next_piece()
        done = not more
        return {"type": "http.request", "body": piece, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return Answer(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start.get("headers", [])},
        body=b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
        chunks_read=body.chunks,
        bytes_read=body.read,
    )


@dataclass
class Server:
    app: FastAPI
    writes: list[WriteRoute]
    tokens: dict[str, str]


def _make(root: Path, **settings: Any) -> Server:
    app = create_app(ServerSettings(store=str(root / "store"), work_dir=root / "work", **settings))
    tokens = {}
    for name, role in (("vera", "viewer"), ("eddie", "editor"), ("ada", "admin")):
        app.state.accounts.add_user(name, PASSWORD, role)
        tokens[role] = app.state.accounts.create_token(name, "limits")[1]
    return Server(app, write_routes(app), tokens)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    made = _make(
        tmp_path_factory.mktemp("limits"), max_artifact_mb=2, max_upload_mb=3, max_request_mb=1
    )
    yield made
    made.app.state.client.close()


def _bearer(server: Server, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens[role]}"}


# --------------------------------------------------------------------------- anonymous


def test_no_write_route_reads_an_anonymous_body(server: Server) -> None:
    """100 MB declared by a caller without credentials: refused on every write route, unread."""
    assert len(server.writes) > 70, "too few write routes found: see test_routes.py"
    failures = []
    for write in server.writes:
        answer = call(
            server.app,
            write.method,
            write.url,
            Body(100 * MB),
            {"content-type": "application/json"},
        )
        if answer.status != 401 or answer.bytes_read:
            failures.append(f"{write}: {answer.status}, {answer.bytes_read} bytes read")
    assert not failures, "\n".join(failures)


def test_an_anonymous_refusal_speaks_each_apis_language(server: Server) -> None:
    api = call(server.app, "POST", "/api/v1/runs", Body(100 * MB))
    assert api.status == 401 and "log in, or send an API token" in api.json()["message"]
    mlflow = call(server.app, "POST", "/api/2.0/mlflow/runs/create", Body(100 * MB))
    assert mlflow.status == 401
    assert mlflow.json()["error_code"] == "UNAUTHENTICATED"
    assert mlflow.bytes_read == api.bytes_read == 0
    # the unread body is not received to the end to find the next request: the connection ends
    assert api.headers["connection"] == mlflow.headers["connection"] == "close"


def test_a_wrong_mlflow_password_is_refused_before_the_body(server: Server) -> None:
    import base64

    wrong = base64.b64encode(b"eddie:not-the-password").decode()
    answer = call(
        server.app,
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        Body(100 * MB),
        {"authorization": f"Basic {wrong}", "content-type": "application/json"},
    )
    assert answer.status == 401 and answer.bytes_read == 0


def test_a_huge_file_sent_to_the_login_form_is_refused_unread(server: Server) -> None:
    """The login form is open to all, so its body limit is the anonymous one (64 KB)."""
    answer = call(
        server.app,
        "POST",
        "/login",
        Body(300 * MB),
        {"content-type": "multipart/form-data; boundary=x"},
    )
    assert answer.status == 413 and answer.bytes_read == 0
    assert "server.max_anonymous_request_kb" in answer.body.decode()


def test_a_viewer_is_refused_before_their_body_is_read(server: Server) -> None:
    answer = call(
        server.app,
        "POST",
        "/api/v1/runs",
        Body(100 * MB),
        {**_bearer(server, "viewer"), "content-type": "application/json"},
    )
    assert answer.status == 403 and "needs the editor role" in answer.json()["message"]
    assert answer.bytes_read == 0


def test_anonymous_readers_search_with_a_small_body_only(tmp_path: Path) -> None:
    made = _make(tmp_path, anonymous_read=True)
    try:
        search = json.dumps({"experiment_ids": ["0"], "max_results": 5}).encode()
        small = call(
            made.app,
            "POST",
            "/api/2.0/mlflow/runs/search",
            Body(0, content=search),
            {"content-type": "application/json"},
        )
        assert small.status == 200, small.body
        big = call(
            made.app,
            "POST",
            "/api/2.0/mlflow/runs/search",
            Body(10 * MB),
            {"content-type": "application/json"},
        )
        assert big.status == 400 and big.bytes_read == 0
        assert "server.max_anonymous_request_kb" in big.json()["message"]
    finally:
        made.app.state.client.close()


# --------------------------------------------------------------------------- logged in


def test_an_editors_json_body_over_its_limit_is_refused_unread(server: Server) -> None:
    answer = call(
        server.app,
        "POST",
        "/api/v1/runs",
        Body(2 * MB),
        {**_bearer(server, "editor"), "content-type": "application/json"},
    )
    assert answer.status == 413 and answer.bytes_read == 0
    message = answer.json()["message"]
    assert "2 MB sent, the limit is 1 MB (server.max_request_mb)" in message


def test_an_artifact_may_be_larger_than_a_json_body_but_has_its_own_limit(server: Server) -> None:
    path = "/api/v1/blobs/" + "a" * 64
    headers = {**_bearer(server, "editor"), "content-type": "application/octet-stream"}
    over = call(server.app, "PUT", path, Body(3 * MB), headers)
    assert over.status == 413 and over.bytes_read == 0
    assert "server.max_artifact_mb" in over.json()["message"]
    within = call(server.app, "PUT", path, Body(int(1.5 * MB)), headers)
    assert within.status != 413, within.body  # read in full (a hash mismatch is 422)
    assert within.bytes_read == int(1.5 * MB)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(server: Server) -> None:
    path = "/api/v1/blobs/" + "b" * 64
    headers = {**_bearer(server, "editor"), "content-type": "application/octet-stream"}
    answer = call(server.app, "PUT", path, Body(50 * MB, declared=False), headers)
    assert answer.status == 413, answer.body
    assert answer.bytes_read <= 2 * MB + 64 * 1024  # one piece past the limit, no more
    assert "server.max_artifact_mb" in answer.json()["message"]


def test_a_chunked_json_body_is_cut_off_too(server: Server) -> None:
    answer = call(
        server.app,
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        Body(20 * MB, declared=False),
        {**_bearer(server, "editor"), "content-type": "application/json"},
    )
    # MLflow's API answers its own way: 400 INVALID_PARAMETER_VALUE, as MLflow does over size
    assert answer.status == 400, answer.body
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "server.max_request_mb" in answer.json()["message"]
    assert answer.bytes_read <= MB + 64 * 1024


# --------------------------------------------------------------------------- nesting


def _deep(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


def test_a_deeply_nested_json_body_is_a_422_naming_the_limit(server: Server) -> None:
    for depth in (40, 100_000):
        answer = call(
            server.app,
            "POST",
            "/api/v1/experiments",
            Body(0, content=_deep(depth)),
            {**_bearer(server, "editor"), "content-type": "application/json"},
        )
        assert answer.status == 422, (depth, answer.body)
        assert "server.max_json_depth" in answer.json()["message"]


def test_a_deeply_nested_mlflow_body_is_mlflows_400(server: Server) -> None:
    answer = call(
        server.app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Body(0, content=_deep(100_000)),
        {**_bearer(server, "editor"), "content-type": "application/json"},
    )
    assert answer.status == 400, answer.body
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "server.max_json_depth" in answer.json()["message"]


def test_an_ordinary_body_within_the_limits_still_works(server: Server) -> None:
    body = json.dumps({"name": "limits-ok"}).encode()
    answer = call(
        server.app,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Body(0, content=body),
        {**_bearer(server, "editor"), "content-type": "application/json"},
    )
    assert answer.status == 200, answer.body
    assert answer.json()["experiment_id"]
