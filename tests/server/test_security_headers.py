"""Every answer of the platform server carries the security headers (keel.server.headers).

Through the ASGI app with a real SQLite store: UI pages, API JSON, MLflow API answers, 404s,
refusals (401, 403, 422, a redirect to the login page), static files, health checks, /docs
and a 500 from an unexpected error; a header a route sets itself is left as it is. The UI's
templates carry nothing the policy forbids (inline scripts, event handlers, styles): the
browser half of this is tests/server/test_browser_framing.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.server.app import create_app
from keel.server.settings import ServerSettings

PASSWORD = "a long and unguessable passphrase 7"
EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
TEMPLATES = Path(__file__).parents[2] / "src" / "keel" / "server" / "ui" / "templates"


@dataclass
class Server:
    app: FastAPI
    token: str
    run_id: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("headers")
    app = create_app(ServerSettings(store=str(root / "store")))
    app.state.accounts.add_user("ann", PASSWORD, "editor")
    _, token = app.state.accounts.create_token("ann", "headers")
    report = root / "report.html"
    report.write_text("<script>alert(1)</script>")
    with app.state.client.start_run("headers-exp", name="r") as run:
        run.log_artifact(report, "report.html")

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/boom", boom)  # an unexpected error, as a bug would raise
    return Server(app, token, run.id)


@pytest.fixture
def anonymous(server: Server) -> Iterator[TestClient]:
    with TestClient(server.app, raise_server_exceptions=False) as tc:
        yield tc


@pytest.fixture
def browser(server: Server) -> Iterator[TestClient]:
    """A logged-in browser session (cookie, CSRF token)."""
    with TestClient(server.app, raise_server_exceptions=False) as tc:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', tc.get("/login").text)
        assert csrf
        answer = tc.post(
            "/login",
            data={"name": "ann", "password": PASSWORD, "csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        yield tc


def assert_secured(answer: object, what: str) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    for name, value in EXPECTED.items():
        assert headers.get_list(name) == [value], (what, name, headers.get_list(name))
    [policy] = headers.get_list("content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'", what
    assert directives["object-src"] == "'none'", what
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, what


# (what, method, path, expected status) for a caller without credentials
ANONYMOUS = [
    ("login page", "GET", "/login", 200),
    ("UI page, to the login page", "GET", "/", 303),
    ("API refusal", "GET", "/api/v1/experiments", 401),
    ("MLflow API refusal", "GET", "/api/2.0/mlflow/experiments/search", 401),
    ("unknown page", "GET", "/no/such/page", 404),
    ("unknown API path", "GET", "/api/v1/no-such-thing", 404),
    ("method not allowed", "DELETE", "/healthz", 405),
    ("static file", "GET", "/static/keel.js", 200),
    ("plotly", "GET", "/static/plotly.min.js", 200),
    ("missing static file", "GET", "/static/nope.js", 404),
    ("Swagger UI's files", "GET", "/_static/swagger/swagger-ui.css", 200),
    ("liveness", "GET", "/healthz", 200),
    ("readiness", "GET", "/readyz", 200),
    ("API description", "GET", "/openapi.json", 200),
    ("unexpected error", "GET", "/test-only/boom", 500),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "status"), ANONYMOUS, ids=[a[0] for a in ANONYMOUS]
)
def test_every_kind_of_answer_carries_the_headers(
    anonymous: TestClient, what: str, method: str, path: str, status: int
) -> None:
    answer = anonymous.request(method, path, follow_redirects=False)
    assert answer.status_code == status, (what, answer.text[:200])
    assert_secured(answer, what)


def test_logged_in_pages_api_answers_and_refusals_carry_them(
    browser: TestClient, server: Server
) -> None:
    bearer = {"Authorization": f"Bearer {server.token}"}
    answers = {
        "start page": browser.get("/"),
        "run page": browser.get(f"/runs/{server.run_id}"),
        "error page": browser.get("/runs/" + "0" * 32),
        "CSRF refusal": browser.post("/logout", follow_redirects=False),
        "API JSON": browser.get("/api/v1/experiments", headers=bearer),
        "invalid input": browser.post("/api/v1/experiments", json={"nme": 1}, headers=bearer),
        "MLflow API": browser.get(
            "/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "headers-exp"},
            headers=bearer,
        ),
        "/docs": browser.get("/docs"),
    }
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "start page": 200,
        "run page": 200,
        "error page": 404,
        "CSRF refusal": 403,
        "API JSON": 200,
        "invalid input": 422,
        "MLflow API": 200,
        "/docs": 200,
    }
    for what, answer in answers.items():
        assert_secured(answer, what)


def test_a_downloaded_artifact_keeps_its_own_headers_once(
    browser: TestClient, server: Server
) -> None:
    """A user's file (here an HTML page with a script) is an attachment, never sniffed, and
    the route's own nosniff is not doubled."""
    answer = browser.get(f"/runs/{server.run_id}/artifacts/report.html")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment")
    assert_secured(answer, "artifact download")


def test_a_header_a_route_sets_itself_is_not_overwritten(tmp_path: Path) -> None:
    from fastapi.responses import PlainTextResponse

    app = create_app(ServerSettings(store=str(tmp_path / "store")))

    async def embeddable() -> PlainTextResponse:
        return PlainTextResponse(
            "ok",
            headers={
                "X-Frame-Options": "SAMEORIGIN",
                "Content-Security-Policy": "frame-ancestors 'self'",
            },
        )

    app.add_api_route("/test-only/embeddable", embeddable)
    with TestClient(app) as tc:
        answer = tc.get("/test-only/embeddable")
    assert answer.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert answer.headers.get_list("content-security-policy") == ["frame-ancestors 'self'"]
    assert answer.headers["x-content-type-options"] == "nosniff"  # the others still added


def test_docs_may_run_exactly_its_own_inline_script(anonymous: TestClient) -> None:
    """Swagger UI starts from an inline script: the policy of /docs names that script's
    SHA-256, and nothing else inline."""
    answer = anonymous.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", answer.text, flags=re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    policy = answer.headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    assert script_src == f"script-src 'self' 'sha256-{digest}'"
    assert int(answer.headers["content-length"]) == len(answer.content)
    # other pages do not get the allowance
    assert "sha256-" + digest not in anonymous.get("/login").headers["content-security-policy"]


FORBIDDEN_IN_TEMPLATES = {
    "an inline script": re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*application/json)[^>]*>"),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "an inline style": re.compile(r"\sstyle\s*=|<style", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "htmx's eval (hx-on, js: values)": re.compile(r"hx-on|hx-vars|[\"']js:", re.I),
}


def test_no_template_carries_what_the_policy_forbids() -> None:
    """The browser would refuse these (and test_browser_framing.py would see it); this
    finds them without a browser, in every template, also the rarely visited ones."""
    found = [
        f"{path.relative_to(TEMPLATES)}:{n}: {what}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for n, line in enumerate(_without_comments(path).splitlines(), start=1)
        for what, pattern in FORBIDDEN_IN_TEMPLATES.items()
        if pattern.search(line)
    ]
    assert len(list(TEMPLATES.rglob("*.html"))) > 20
    assert found == []


def _without_comments(path: Path) -> str:
    """The template with its ``{# comments #}`` blanked (their lines kept, for numbering)."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\{#.*?#\}", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
