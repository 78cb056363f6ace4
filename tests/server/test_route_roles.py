"""Every write route of the platform server, called for real by each role that must not
write: the dynamic twin of test_routes.py's static audit.

The routes are enumerated from the app with test_routes.py's own helpers (API, web UI and
MLflow-compatible API alike), so a new write route is called here the day it is added.
Each is called, with plausible path parameters and a well-formed body:

* as an anonymous caller: 401 (``{"message"}`` on the API, MLflow's ``UNAUTHENTICATED`` on
  its API, a 401 page or a redirect to /login in the UI);
* as an anonymous caller on a server with ``anonymous_read``: 403 (reading is all it allows);
* as a viewer (a bearer token on the APIs, a logged-in session with its CSRF token in the
  UI): 403 naming the role it needs, except the routes test_routes.py justifies
  (``SELF_SERVICE``: one's own tokens; ``READING_POSTS``: MLflow's searches), which must let
  a viewer through;
* as an editor, on every admin-only route: 403.

A recorder around the app checks that each request reached the route it was meant for (a
badly filled path could land on another route and prove nothing). Too few routes found
fails the test: the routers were not mounted, or the enumeration broke.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from keel.server.app import create_app
from keel.server.settings import ServerSettings
from server.test_routes import (
    API,
    OPEN_ROUTES,
    READING_POSTS,
    SELF_SERVICE,
    WRITE_METHODS,
    _api_routes,
    _roles,
)

PASSWORD = "correct-horse"
HEX = uuid.uuid4().hex
#: plausible values of path parameters, by name (anything else gets ``x``)
PATH_VALUES = {
    "run_id": HEX,
    "experiment_id": HEX,
    "version_id": HEX,
    "dataset_id": HEX,
    "owner_id": HEX,
    "owner_kind": "run",
    "sha256": "a" * 64,
    "name": "iris",
    "alias": "production",
    "user": "vera",
    "job_id": "20240101-000000-0a1b2c3d",
    "model_id": f"m-{HEX}",
    "tag_key": "team",
    "artifact_path": f"0/{HEX}/artifacts/model.pkl",
    "path": "unknown/thing",
}
#: fewer write routes than these means routers are missing or the enumeration broke
MIN_WRITES = {"api": 30, "ui": 8, "mlflow": 40}
MIN_ADMIN_ONLY = 8
_PARAM = re.compile(r"\{([a-zA-Z_]+)(?::[a-z]+)?\}")


@dataclass(frozen=True)
class WriteRoute:
    method: str
    path: str  # as declared, e.g. /api/v1/runs/{run_id}
    route: APIRoute
    roles: frozenset[str]

    @property
    def area(self) -> str:
        if self.path.startswith(API):
            return "api"
        if self.path.startswith(("/api/2.0/", "/api/3.0/")):
            return "mlflow"
        return "ui"

    @property
    def url(self) -> str:
        return _PARAM.sub(lambda m: PATH_VALUES.get(m.group(1), "x"), self.path)

    @property
    def justified_for_viewers(self) -> bool:
        return (self.method, self.path) in SELF_SERVICE | READING_POSTS

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class RouteRecorder:
    """The app, remembering which route answered the last request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.last: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.last = scope.get("route")


def write_routes(app: FastAPI) -> list[WriteRoute]:
    found = []
    for path, route in _api_routes(app.routes):
        for method in sorted(route.methods & WRITE_METHODS):
            if (method, path) not in OPEN_ROUTES:
                found.append(WriteRoute(method, path, route, frozenset(_roles(route))))
    return found


@dataclass
class Caller:
    """One way of calling: a test client, maybe a token, maybe a session's CSRF token."""

    name: str
    tc: TestClient
    recorder: RouteRecorder
    token: str | None = None
    csrf: str | None = None
    failures: list[str] = field(default_factory=list)

    def call(self, write: WriteRoute) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
        if write.area == "ui":
            kwargs["data"] = {"csrf_token": self.csrf or ""}
        elif write.method == "PUT" and ("/blobs/" in write.path or "artifacts/" in write.path):
            kwargs["content"] = b"some bytes"
        else:
            kwargs["json"] = {}
        self.recorder.last = None
        answer = self.tc.request(write.method, write.url, **kwargs)
        if self.recorder.last is not write.route:
            reached = getattr(self.recorder.last, "path", self.recorder.last)
            self.failures.append(f"{write} ({write.url}) reached {reached} instead")
        return answer

    def expect(self, write: WriteRoute, ok: bool, what: str, answer: Any) -> None:
        if not ok:
            self.failures.append(
                f"{write} as {self.name}: {what}, got {answer.status_code} {answer.text[:200]!r}"
            )


@dataclass
class Server:
    app: FastAPI
    recorder: RouteRecorder
    writes: list[WriteRoute]
    tokens: dict[str, str]


def _login(tc: TestClient, name: str) -> str:
    """Log ``tc`` in as ``name``; the session's CSRF token."""
    token = _csrf(tc.get("/login").text)
    answer = tc.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return _csrf(tc.get("/").text)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _make(root: Path, **settings: Any) -> Server:
    app = create_app(ServerSettings(store=str(root / "store"), work_dir=root / "work", **settings))
    tokens = {}
    for name, role in (("vera", "viewer"), ("eddie", "editor"), ("ada", "admin")):
        app.state.accounts.add_user(name, PASSWORD, role)
        tokens[role] = app.state.accounts.create_token(name, "roles")[1]
    return Server(app, RouteRecorder(app), write_routes(app), tokens)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    made = _make(tmp_path_factory.mktemp("roles"))
    yield made
    made.app.state.client.close()


def _caller(server: Server, name: str, login: str | None = None, role: str | None = None) -> Caller:
    tc = TestClient(server.recorder)
    tc.__enter__()
    caller = Caller(name, tc, server.recorder, token=server.tokens.get(role) if role else None)
    caller.csrf = _login(tc, login) if login else _csrf(tc.get("/login").text)
    return caller


def _close(caller: Caller) -> None:
    caller.tc.__exit__(None, None, None)


def _check_counts(writes: list[WriteRoute]) -> None:
    seen = {area: sum(w.area == area for w in writes) for area in MIN_WRITES}
    assert all(seen[area] >= least for area, least in MIN_WRITES.items()), (
        f"too few write routes found ({seen}, expected at least {MIN_WRITES}): "
        "a router is not mounted, or test_routes.py's enumeration changed"
    )


def _says_the_role(answer: Any, role: str) -> bool:
    """A 403 whose message names the role the route needs (the role check refused it, not
    something else that happens to answer 403)."""
    return answer.status_code == 403 and f"needs the {role} role" in answer.text


def _needed(write: WriteRoute) -> str:
    return "admin" if "admin" in write.roles else "editor"


# --------------------------------------------------------------------------- the tests


def test_anonymous_callers_are_asked_to_log_in_on_every_write(server: Server) -> None:
    _check_counts(server.writes)
    anonymous = _caller(server, "anonymous")
    try:
        for write in server.writes:
            answer = anonymous.call(write)
            if write.area == "ui":
                to_login = answer.status_code == 303 and answer.headers.get(
                    "location", ""
                ).startswith("/login")
                anonymous.expect(
                    write, answer.status_code == 401 or to_login, "401 or /login", answer
                )
            elif write.area == "mlflow":
                anonymous.expect(
                    write,
                    answer.status_code == 401
                    and answer.json().get("error_code") == "UNAUTHENTICATED",
                    "401 UNAUTHENTICATED",
                    answer,
                )
            else:
                anonymous.expect(
                    write,
                    answer.status_code == 401 and "message" in answer.json(),
                    "401 with a message",
                    answer,
                )
    finally:
        _close(anonymous)
    assert not anonymous.failures, "\n".join(anonymous.failures)


def test_anonymous_readers_may_not_write(tmp_path: Path) -> None:
    open_server = _make(tmp_path, anonymous_read=True)
    _check_counts(open_server.writes)
    anonymous = _caller(open_server, "anonymous reader")
    try:
        for write in open_server.writes:
            answer = anonymous.call(write)
            if (write.method, write.path) in READING_POSTS:
                anonymous.expect(
                    write, answer.status_code not in (401, 403), "let through (a search)", answer
                )
            elif (write.method, write.path) in SELF_SERVICE:
                # one's own tokens need a real account: nobody to make them for
                anonymous.expect(write, answer.status_code == 401, "401", answer)
            else:
                anonymous.expect(write, _says_the_role(answer, _needed(write)), "403", answer)
    finally:
        _close(anonymous)
        open_server.app.state.client.close()
    assert not anonymous.failures, "\n".join(anonymous.failures)


def test_viewers_may_not_write_except_their_own_tokens_and_searches(server: Server) -> None:
    api = _caller(server, "viewer (token)", role="viewer")
    ui = _caller(server, "viewer (session)", login="vera")
    checked = 0
    try:
        for write in server.writes:
            caller = ui if write.area == "ui" else api
            answer = caller.call(write)
            checked += 1
            if write.justified_for_viewers:
                caller.expect(
                    write, answer.status_code not in (401, 403), "let through (justified)", answer
                )
            else:
                caller.expect(write, _says_the_role(answer, _needed(write)), "403", answer)
    finally:
        _close(api)
        _close(ui)
    assert checked == len(server.writes)
    failures = api.failures + ui.failures
    assert not failures, "\n".join(failures)


def test_editors_may_not_call_admin_routes(server: Server) -> None:
    admin_only = [w for w in server.writes if w.roles == {"admin"}]
    assert len(admin_only) >= MIN_ADMIN_ONLY, [str(w) for w in admin_only]
    api = _caller(server, "editor (token)", role="editor")
    try:
        for write in admin_only:
            answer = api.call(write)
            api.expect(write, _says_the_role(answer, "admin"), "403", answer)
    finally:
        _close(api)
    assert not api.failures, "\n".join(api.failures)


def test_the_justified_exceptions_are_real_routes(server: Server) -> None:
    """SELF_SERVICE and READING_POSTS name routes that exist: a renamed route must not
    leave a stale exception behind (it would silently excuse nothing, or a new route)."""
    declared = {(w.method, w.path) for w in server.writes}
    assert declared >= SELF_SERVICE | READING_POSTS, (SELF_SERVICE | READING_POSTS) - declared
