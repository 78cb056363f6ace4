"""The web UI in a real browser: Playwright driving the system Chromium against a real
``keel server`` process on loopback.

Screenshots of the key pages go to ``test-output/screenshots/`` (or ``$KEEL_TEST_OUTPUT``).
Chromium comes from Debian (``scripts/ensure-chromium.sh``, run by ``make test``); without
it these tests skip, which under ``CI=true`` fails the run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def screenshots() -> Path:
    root = Path(os.environ.get("KEEL_TEST_OUTPUT") or REPO / "test-output")
    folder = root / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class LiveServer:
    url: str
    store: Path
    password: str  # of the first admin, printed once by the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _populate(store: Path) -> None:
    """An experiment with three runs, one with a long loss curve and one that failed."""
    import keel

    client = keel.Client(store=str(store), project="default")
    for lr in (0.1, 0.01):
        with client.start_run("browser-exp", name=f"lr={lr}", kind="train") as run:
            run.log_params({"lr": lr, "model": "linear"})
            for step in range(2_000):
                run.log_metrics({"loss": 1 / (1 + step * lr)}, step=step)
            run.log_metrics({"auc": 0.9 + lr})
    with pytest.raises(RuntimeError), client.start_run("browser-exp", name="broken") as run:
        raise RuntimeError("the data ran out")
    client.close()


def _populate_like_the_demo(store: Path) -> None:
    """What ``make demo`` leaves: a grid search and model ``linear`` in project ``demo``,
    then model ``iris`` and its training run in project ``examples``; ``default`` empty."""
    import keel

    with keel.Client(store=str(store), project="demo") as demo:
        with demo.start_run("linear-regression", name="grid-search", kind="train") as grid:
            for lr in (0.001, 0.005, 0.01):
                with grid.start_child(name=f"lr={lr}", kind="train") as run:
                    run.log_params({"lr": lr, "epochs": 200})
                    run.log_metrics({"test_mse": lr * 10})
        weights = store.parent / "weights.json"
        weights.write_text("[1.0, 2.0]")
        demo.log_model_version("linear", run, weights, path_in_run="model")
    with (
        keel.Client(store=str(store), project="examples") as examples,
        examples.start_run("iris", name="iris-train", kind="train") as iris,
    ):
        iris.log_metrics({"accuracy": 0.97})
        iris.log_model_version("iris", weights, path_in_run="model")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("browser")
    store = root / "store"
    _populate(store)
    yield from _serve(root, store)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("browser-demo")
    store = root / ".keel"
    _populate_like_the_demo(store)
    yield from _serve(root, store)


def _serve(root: Path, store: Path) -> Iterator[LiveServer]:
    """A ``keel server`` process on ``store``, stopped when the caller is done."""
    port = _free_port()
    log = (root / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "--store", str(store), "server", "--port", str(port)],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        password = _wait_ready(url, root / "server.log", proc)
        yield LiveServer(url, store, password)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_ready(url: str, log: Path, proc: subprocess.Popen[str]) -> str:
    import httpx2 as httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"keel server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                found = re.search(r"first user: admin / (\S+)", log.read_text())
                assert found, log.read_text()
                return found.group(1)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"keel server not ready: {log.read_text()[-2000:]}")


@pytest.fixture
def page(browser, live_server: LiveServer) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/")
    page.wait_for_url(re.compile(r"/login"))  # nobody is logged in yet
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", live_server.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _log_in(page, server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_url(re.compile(r"/login"))
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", server.password)
    page.click("button[type=submit]")


@pytest.mark.newcomer
def test_after_the_demo_a_login_lands_on_its_runs_and_links_work_in_a_fresh_session(
    browser,  # type: ignore[no-untyped-def]
    demo_server: LiveServer,
) -> None:
    """The newcomer's path: log in after ``make demo`` and see what it made (not the empty
    ``default``); a link to the demo's runs opened in another browser shows the same runs."""
    shots = screenshots()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{demo_server.url}/")
    _log_in(page, demo_server)
    page.wait_for_url(f"{demo_server.url}/")
    main = page.inner_text("main")
    assert "Project examples" in main and "iris-train" in main, main  # the last project made
    projects = page.inner_text("#projects")
    assert "demo" in projects and "examples" in projects and "default" in projects
    page.screenshot(path=str(shots / "landing-after-demo.png"), full_page=True)

    page.click("#projects >> text=demo")
    page.wait_for_url(f"{demo_server.url}/projects/demo")
    page.click("text=linear-regression")
    page.wait_for_selector("table >> text=lr=0.005")
    link = page.url
    assert "/projects/demo/experiments/" in link
    text = page.inner_text("main")
    assert "grid-search" in text and "lr=0.01" in text and "No runs." not in text
    context.close()

    fresh = browser.new_context()  # another browser: no session, no last project
    other = fresh.new_page()
    other.goto(f"{demo_server.url}/projects/examples")
    _log_in(other, demo_server)
    other.wait_for_url(f"{demo_server.url}/projects/examples")
    other.goto(link)
    other.wait_for_selector("table >> text=lr=0.005")
    assert "grid-search" in other.inner_text("main")
    fresh.close()


def test_login_is_refused_with_a_wrong_password(browser, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("main")
    context.close()


def test_browse_an_experiment_and_a_run_chart(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    shots = screenshots()
    page.screenshot(path=str(shots / "home.png"), full_page=True)
    page.click("text=browser-exp")
    page.wait_for_selector("table >> text=lr=0.1")
    assert "broken" in page.inner_text("main")
    page.screenshot(path=str(shots / "experiment.png"), full_page=True)
    page.click("table >> text=lr=0.1")
    page.wait_for_selector(".js-plotly-plot")  # plotly drew the loss chart
    text = page.inner_text("main")
    assert "linear" in text and "loss" in text
    page.screenshot(path=str(shots / "run.png"), full_page=True)


def test_choose_search_and_sort_columns_with_the_picker(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    """The runs table's column picker: search the keys, tick one, its column appears and
    sorts; the picker stays open for the next tick."""
    page.click("text=browser-exp")
    page.wait_for_selector("table >> text=lr=0.1")
    page.click("#column-picker summary")
    page.wait_for_selector("#column-list input[data-column]")  # loaded when opened
    page.fill("#column-search", "au")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#column-list input[data-column]')]"
        ".map((b) => b.dataset.column).join() === 'metrics.auc'"
    )
    auc = "#column-list input[data-column='metrics.auc']"
    header = "th a[title='sort by metrics.auc']"
    assert page.is_checked(auc)  # shown by default: among the first keys
    page.uncheck(auc)
    page.wait_for_function("() => !document.querySelector(\"th a[title='sort by metrics.auc']\")")
    assert "metrics.auc" not in page.input_value("form.filter input[name=cols]")
    assert page.is_visible("#column-search")  # the picker stays open across the swap
    page.check(auc)
    page.wait_for_selector(header)
    assert "metrics.auc" in page.input_value("form.filter input[name=cols]")
    page.click(header)  # highest first
    page.wait_for_selector("th.active a[title='sort by metrics.auc']")
    names = page.locator("table.runs tbody tr td:nth-child(2)").all_inner_texts()
    assert names[:2] == ["lr=0.1", "lr=0.01"], names
    page.screenshot(path=str(screenshots() / "column-picker.png"), full_page=True)


EXAMPLE = REPO / "examples" / "mlopen_pipeline"


def _wait_for_job(page, outcome: str = "finished") -> None:  # type: ignore[no-untyped-def]
    """Wait until htmx's polling shows the job done, and check how it ended."""
    page.wait_for_selector(
        "#job-status[data-status=finished], #job-status[data-status=failed], "
        "#job-status[data-status=timed_out], #job-status[data-status=cancelled]",
        timeout=120_000,
    )
    status = page.get_attribute("#job-status", "data-status")
    assert status == outcome, page.inner_text("main")


def test_upload_train_and_run_a_pipeline(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    shots = screenshots()
    page.click("nav >> text=Pipelines") if page.locator("nav").count() else None
    page.goto(f"{live_server.url}/pipelines")
    with page.expect_navigation():
        page.set_input_files("#upload-pipeline input[name=control]", EXAMPLE / "mlopen_control.py")
        page.click("#upload-pipeline button[type=submit]")
    assert "mlopen_control" in page.inner_text("main")
    with page.expect_navigation():
        page.set_input_files("#upload-input input[name=file]", EXAMPLE / "data" / "iris_train.csv")
        page.click("#upload-input button[type=submit]")
    assert "iris_train.csv" in page.inner_text("main")
    page.screenshot(path=str(shots / "pipelines.png"), full_page=True)

    page.click("table >> text=mlopen_control")
    page.select_option("#train-form select[name=input]", "iris_train.csv")
    page.screenshot(path=str(shots / "pipeline-form.png"), full_page=True)
    page.click("#train-form button[type=submit]")
    _wait_for_job(page)
    page.screenshot(path=str(shots / "train-job.png"), full_page=True)

    page.go_back()
    page.reload()
    page.select_option("#run-form select[name=input]", "iris_train.csv")
    page.click("#run-form button[type=submit]")
    _wait_for_job(page)
    page.click("#results-link")
    page.wait_for_selector("#preds-table")
    page.wait_for_selector("#graph-0 .js-plotly-plot, #graph-0.js-plotly-plot")  # plotly drew it
    table = page.inner_text("#preds-table")
    assert "prediction" in table and "setosa" in table
    page.screenshot(path=str(shots / "pipeline-result.png"), full_page=True)


def test_a_bad_upload_says_why_on_the_page(page, live_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    not_python = tmp_path / "notes.txt"
    not_python.write_text("train = 1\n")
    page.goto(f"{live_server.url}/pipelines")
    page.set_input_files("#upload-pipeline input[name=control]", not_python)
    page.click("#upload-pipeline button[type=submit]")
    message = page.locator("[role=alert]").first
    message.wait_for()
    assert ".py" in message.inner_text()
    page.screenshot(path=str(screenshots() / "pipeline-refused.png"), full_page=True)
