"""The UI cannot be framed, and its own pages live within its Content-Security-Policy: in
Chromium (Playwright), against a real ``keel server`` process on loopback.

* A page served from another port (another origin, same site: the session cookie goes
  along) frames the logged-in UI: Chromium must refuse to show it (``X-Frame-Options`` and
  CSP ``frame-ancestors``). Before :mod:`keel.server.headers`, the frame showed the UI,
  logged in, with its buttons one click away.
* Every UI page (login, start page, experiment, run, compare, models, a model version,
  datasets, a dataset version, pipelines, jobs, /docs) and its main interactions (the htmx
  filter box, charts drawn by plotly, the compare page's toggle, the jobs filter) work and
  report no CSP violation, with the policy in force on each (the page's answer carries it).
* A script injected into a page's markup does not run.

Chromium comes from Debian (``scripts/ensure-chromium.sh``); without it these tests skip,
which under ``CI=true`` fails the run.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.test_browser import _free_port, _wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: records every CSP violation of a page (an init script runs before the page's own)
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") +
                    " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@dataclass
class UI:
    url: str
    password: str
    exp_id: str
    run_ids: list[str]


def _populate(store: Path, root: Path) -> tuple[str, list[str]]:
    """An experiment with two runs with loss curves, a model version and a dataset."""
    import keel

    client = keel.Client(store=str(store), project="default")
    data = root / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    ds = client.log_dataset("toy", data, description="toy data")
    ids = []
    for lr in (0.1, 0.01):
        with client.start_run("csp-exp", name=f"lr={lr}", kind="train") as run:
            run.log_params({"lr": lr, "model": "linear" if lr > 0.05 else "tree"})
            for step in range(200):
                run.log_metrics({"loss": 1 / (1 + step * lr)}, step=step)
            run.log_metrics({"auc": 0.9 + lr})
            run.use_dataset(ds)
            weights = root / f"model-{lr}.txt"
            weights.write_text(f"weights for lr={lr}")
            run.log_model_version("clf", weights, path_in_run=f"clf-{lr}")
        ids.append(run.id)
    exp_id = client.get_or_create_exp("csp-exp").id
    client.close()
    return exp_id, ids


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    root = tmp_path_factory.mktemp("framing")
    store = root / "store"
    exp_id, run_ids = _populate(store, root)
    port = _free_port()
    with (root / "server.log").open("w+") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keel.cli",
                "--store",
                str(store),
                "server",
                "--port",
                str(port),
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            password = _wait_ready(url, root / "server.log", proc)
            yield UI(url, password, exp_id, run_ids)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory, ui: UI) -> Iterator[str]:
    """A page on another port of the same host that frames the UI's jobs page."""
    folder = tmp_path_factory.mktemp("attacker")
    (folder / "frame.html").write_text(
        "<!doctype html><title>win a prize</title><h1>Click the button!</h1>"
        f'<iframe name="victim" src="{ui.url}/jobs" width="900" height="600"></iframe>'
    )
    handler = functools.partial(_QuietFiles, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/frame.html"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Session:
    """A logged-in page that records CSP violations, and what its login page had."""

    page: Any
    login_headers: dict[str, str]
    login_violations: list[str]


@pytest.fixture
def logged_in(browser, ui: UI) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    answer = page.goto(f"{ui.url}/login")
    assert answer is not None
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", ui.password)
    violations = _violations(page)
    page.click("button[type=submit]")
    page.wait_for_url(f"{ui.url}/")
    yield Session(page, answer.headers, violations)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _violations(page: Any) -> list[str]:
    return page.evaluate("window.__csp || []")


def _assert_policy(headers: dict[str, str], what: str) -> None:
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, (what, policy)
    assert headers.get("x-frame-options") == "DENY", what


def test_another_origin_cannot_show_the_logged_in_ui_in_a_frame(
    logged_in: Session, attacker: str, ui: UI
) -> None:
    page = logged_in.page
    page.goto(attacker)
    page.wait_for_load_state("load")
    frame = page.frame(name="victim")
    assert frame is not None
    # the frame is Chromium's error page, with nothing of keel's in it
    shown = frame.evaluate("document.documentElement ? document.documentElement.outerHTML : ''")
    assert "log out" not in shown and "Jobs" not in shown and "keel" not in shown, shown[:500]
    assert page.locator("h1").inner_text() == "Click the button!"  # the attacker page itself
    assert frame.url.startswith("chrome-error:"), frame.url  # Chromium refused to load it
    # the UI itself, opened as a page, still works in the same browser session
    page.goto(f"{ui.url}/jobs")
    assert "log out" in page.inner_text("header")


def _visit(page: Any, url: str, ready: str) -> None:
    """Open ``url``, wait for ``ready`` (a selector), check the policy came with it."""
    answer = page.goto(url)
    assert answer is not None, url
    _assert_policy(answer.headers, url)
    page.wait_for_selector(ready)


def test_every_page_and_interaction_keeps_within_the_policy(logged_in: Session, ui: UI) -> None:
    page = logged_in.page
    _assert_policy(logged_in.login_headers, "/login")
    seen: dict[str, list[str]] = {}
    if logged_in.login_violations:
        seen["login page"] = logged_in.login_violations

    def check(where: str) -> None:
        found = _violations(page)
        if found:
            seen[where] = found

    _visit(page, f"{ui.url}/", "text=csp-exp")
    check("start page")

    # the experiment's runs table, filtered through htmx (no page load: the URL is pushed)
    _visit(page, f"{ui.url}/experiments/{ui.exp_id}", "table >> text=lr=0.01")
    page.fill("input[name=q]", "metrics.auc > 0.95")
    page.click("form.filter button[type=submit]")
    page.wait_for_url(re.compile(r"q=metrics"))
    page.wait_for_function("() => !document.querySelector('#runs').innerText.includes('lr=0.01')")
    assert "lr=0.1" in page.inner_text("#runs")
    check("experiment page, htmx filter")

    # a run: the loss chart comes in through htmx and plotly draws it; hovering shows its tools
    _visit(page, f"{ui.url}/runs/{ui.run_ids[0]}", ".js-plotly-plot .main-svg")
    page.hover(".js-plotly-plot")
    page.wait_for_selector(".js-plotly-plot .modebar", state="attached")
    check("run page, chart")

    # compare: charts, and the "only differences" toggle (keel.js, no inline handler)
    runs = "&".join(f"runs={i}" for i in ui.run_ids)
    _visit(page, f"{ui.url}/compare?{runs}", ".js-plotly-plot .main-svg")
    page.check("input[data-toggle-class]")
    assert "only-diff" in (page.get_attribute("#param-diff", "class") or "")
    check("compare page")

    _visit(page, f"{ui.url}/models", "text=clf")
    check("models")
    _visit(page, f"{ui.url}/models/clf", "text=clf")
    check("a model")
    _visit(page, f"{ui.url}/models/clf/v/1", "text=clf")
    check("a model version")
    _visit(page, f"{ui.url}/datasets", "text=toy")
    check("datasets")
    _visit(page, f"{ui.url}/datasets/toy/v/1", "text=data.csv")
    check("a dataset version")
    _visit(page, f"{ui.url}/pipelines", "#upload-pipeline")
    check("pipelines")

    # the jobs list: choosing a status sends the form (keel.js, no inline handler)
    _visit(page, f"{ui.url}/jobs", "select[name=status]")
    with page.expect_navigation():
        page.select_option("select[name=status]", "failed")
    assert "status=failed" in page.url
    check("jobs")

    _visit(page, f"{ui.url}/no/such/page", "section.error")
    check("an error page")

    # Swagger UI: its inline start-up script is allowed by its hash, so it runs and draws
    _visit(page, f"{ui.url}/docs", "#swagger-ui .swagger-ui")
    check("/docs")

    assert seen == {}, f"pages that broke the Content-Security-Policy: {seen}"


def test_a_script_injected_into_a_page_does_not_run(logged_in: Session, ui: UI) -> None:
    """What the policy is for: were a value ever rendered unescaped, its inline handler or
    script would still not run."""
    page = logged_in.page
    _visit(page, f"{ui.url}/runs/{ui.run_ids[0]}", "main")
    page.evaluate(
        """document.querySelector("main").insertAdjacentHTML("beforeend",
             '<img id="bait" src="/no-such-image" onerror="window.pwned = 1">')"""
    )
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.pwned = 2"; document.body.appendChild(s); }"""
    )
    page.wait_for_function("() => window.__csp.length >= 2")
    assert page.evaluate("window.pwned") is None
    assert any("script-src" in v for v in _violations(page)), _violations(page)
