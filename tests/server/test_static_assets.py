"""Static files of both servers, compressed and cached (keel.serving.assets).

The UI's ``/static`` (htmx, keel's css and js, plotly's 4.8 MB bundle) and the Swagger UI
of ``/docs`` on the platform server and on a served model: gzip only when the client asks
for it, the exact file once decompressed, the right ``Content-Length``, a year's caching on
the versioned URLs the pages use, and ``304 Not Modified`` on ``If-None-Match`` elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keel.server.ui import HERE as UI
from keel.server.ui import plotly_js_path
from keel.serving.assets import IMMUTABLE, SWAGGER_UI, AssetFolder, accepts_gzip

PASSWORD = "correct-horse"
#: every file the UI's pages load, and where it comes from
UI_FILES = {
    "keel.css": UI / "static" / "keel.css",
    "htmx.min.js": UI / "static" / "htmx.min.js",
    "keel.js": UI / "static" / "keel.js",
    "plotly.min.js": plotly_js_path(),
}
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def version_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The platform server's app with a run, logged in as a viewer."""
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings

    root = tmp_path_factory.mktemp("assets")
    app = create_app(ServerSettings(store=str(root / "store")))
    app.state.accounts.add_user("vera", PASSWORD, "viewer")
    with app.state.client.start_run("exp", name="charted") as run:
        run.log_metrics({"loss": 0.5}, step=0)
    with TestClient(app) as tc:
        login = tc.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token, "no CSRF token on the login page"
        answer = tc.post(
            "/login",
            data={"name": "vera", "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        tc.run_id = run.id  # type: ignore[attr-defined]
        yield tc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A served model's app (keel serve's), of a trained model."""
    from tests.serving.conftest import write_project

    from keel.lifecycle.training import train
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    root = tmp_path_factory.mktemp("served")
    config = write_project(root)
    # the store next to the project, wherever the tests run from
    config.write_text(f'store: "{root / "store"}"\n' + config.read_text())
    train(config)
    with TestClient(build_app(open_service(config=config))) as tc:
        yield tc


def raw_get(tc: TestClient, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body's bytes as sent (the test client would un-gzip them)."""
    with tc.stream("GET", url, headers=headers) as answer:
        body = b"".join(answer.iter_raw())
        return answer.status_code, dict(answer.headers), body


def asset_urls(html: str) -> dict[str, str]:
    """``{file name: URL}`` of the page's scripts and stylesheets under /static/."""
    return {
        url.split("?")[0].rsplit("/", 1)[1]: url
        for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    }


# --- the URLs pages use ------------------------------------------------------------------


def test_pages_load_every_asset_by_its_versioned_url(platform: TestClient) -> None:
    login_page = asset_urls(platform.get("/login").text)
    run_page = platform.get(f"/runs/{platform.run_id}")  # type: ignore[attr-defined]
    assert run_page.status_code == 200
    urls = asset_urls(run_page.text)
    assert set(urls) == set(UI_FILES), urls
    for name, path in UI_FILES.items():
        assert urls[name] == f"/static/{name}?v={version_of(path)}"
    assert login_page == {name: urls[name] for name in ("keel.css", "htmx.min.js", "keel.js")}


@pytest.mark.parametrize("server", ["platform", "served"])
def test_docs_loads_swagger_ui_by_versioned_urls(
    server: str, request: pytest.FixtureRequest
) -> None:
    tc: TestClient = request.getfixturevalue(server)
    page = tc.get("/docs").text
    assert "cdn" not in page and "validator.swagger.io" not in page
    for name in SWAGGER_FILES:
        url = f"/_static/swagger/{name}?v={version_of(SWAGGER_UI / name)}"
        assert f'"{url}"' in page, (name, page)
        status, headers, body = raw_get(tc, url, **{"accept-encoding": "gzip"})
        assert status == 200 and headers["cache-control"] == IMMUTABLE
        if name == "favicon-32x32.png":  # compressed already: sent as it is
            assert "content-encoding" not in headers and body == (SWAGGER_UI / name).read_bytes()
        else:
            assert headers["content-encoding"] == "gzip"
            assert gzip.decompress(body) == (SWAGGER_UI / name).read_bytes()


def test_swagger_ui_is_version_5_which_reads_openapi_3_1() -> None:
    """Swagger UI 4 refuses the OpenAPI 3.1 documents of both servers (the browser test,
    tests/server/test_docs_page.py, shows the page); this guards the vendored copy."""
    bundle = (SWAGGER_UI / "swagger-ui-bundle.js").read_text()
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert found and int(found.group(1)) >= 5, found
    assert f"Swagger UI {'.'.join(found.groups())}" in (SWAGGER_UI / "README.md").read_text()


# --- gzip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UI_FILES))
def test_gzip_when_asked_decompresses_to_the_exact_file(platform: TestClient, name: str) -> None:
    status, headers, body = raw_get(platform, f"/static/{name}", **{"accept-encoding": "gzip"})
    original = UI_FILES[name].read_bytes()
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body) < len(original)
    assert gzip.decompress(body) == original
    assert headers["content-type"].startswith(("text/javascript", "text/css"))


@pytest.mark.parametrize("accept", ["", "identity", "gzip;q=0", "br", "gzip;q=0, *"])
def test_no_gzip_unless_asked(platform: TestClient, accept: str) -> None:
    status, headers, body = raw_get(
        platform, "/static/plotly.min.js", **{"accept-encoding": accept}
    )
    assert status == 200 and "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body)
    assert body == UI_FILES["plotly.min.js"].read_bytes()


def test_head_tells_the_length_without_the_body(platform: TestClient) -> None:
    answer = platform.head("/static/keel.css", headers={"accept-encoding": "identity"})
    assert answer.status_code == 200 and answer.content == b""
    assert int(answer.headers["content-length"]) == UI_FILES["keel.css"].stat().st_size


# --- caching ------------------------------------------------------------------------------


def test_versioned_url_is_cached_a_year_any_other_is_revalidated(platform: TestClient) -> None:
    version = version_of(UI_FILES["keel.js"])
    fresh = platform.get(f"/static/keel.js?v={version}")
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    for url in ("/static/keel.js", "/static/keel.js?v=0123456789abcdef"):
        answer = platform.get(url)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-cache", url
        assert answer.headers["etag"].startswith(f'"{version}'), url


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_if_none_match_is_answered_304_without_a_body(platform: TestClient, encoding: str) -> None:
    headers = {"accept-encoding": encoding}
    first = platform.get("/static/plotly.min.js", headers=headers)
    etag = first.headers["etag"]
    again = platform.get("/static/plotly.min.js", headers={**headers, "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    # a weak form of the same tag matches too; another file's tag does not
    weak = platform.get("/static/plotly.min.js", headers={**headers, "if-none-match": f"W/{etag}"})
    assert weak.status_code == 304
    other = platform.get("/static/keel.js", headers={**headers, "if-none-match": etag})
    assert other.status_code == 200 and other.content == UI_FILES["keel.js"].read_bytes()


def test_security_headers_still_on_static_files(platform: TestClient) -> None:
    answer = platform.get("/static/keel.js")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in answer.headers["content-security-policy"]


def test_unknown_or_outside_files_are_404(platform: TestClient, served: TestClient) -> None:
    for url in ("/static/nope.js", "/static/../app.py", "/static/%2e%2e/app.py"):
        assert platform.get(url).status_code == 404, url
    for url in ("/_static/swagger/nope.js", "/_static/swagger/%2e%2e/assets.py"):
        answer = served.get(url)
        assert answer.status_code == 404, url
        assert answer.json()["message"].startswith("no such resource")


# --- the mechanism, on files of its own ---------------------------------------------------


def test_a_changed_file_gets_a_new_url_and_is_read_again(tmp_path: Path) -> None:
    from starlette.applications import Starlette

    script = tmp_path / "app.js"
    script.write_text("console.log('one')\n" * 50)
    files = AssetFolder("/assets", tmp_path)
    app = Starlette(routes=[files.route()])
    with TestClient(app) as tc:
        first = files.url("app.js")
        assert tc.get(first).text == script.read_text()
        script.write_text("console.log('two')\n" * 50)
        second = files.url("app.js")
        assert second != first
        assert tc.get(second).text == script.read_text()
        assert tc.get(second).headers["cache-control"] == IMMUTABLE
        assert tc.get(first).headers["cache-control"] == "no-cache"  # an old page's URL


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("gzip; q=bad", False),
    ],
)
def test_accept_encoding(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok
