"""``/docs`` in a real browser on both servers: a real ``keel server`` and a real ``keel serve``
of a small trained model, each opened in Chromium (Playwright), must list their operations.

Swagger UI 4 cannot render the OpenAPI 3.1 document FastAPI and keel emit ("Unable to render
this definition"): the page loaded, its script ran, and no operation was shown, which the
old test (the page references the local script) did not notice.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.newcomer]


MODEL_CODE = """\
import keel


class Double(keel.Model):
    def train(self, ctx):
        return {"weight": 2.0}

    def predict(self, ctx, fitted, inputs):
        return {"y": inputs["x"] * fitted["weight"]}
"""

CONFIG = """\
project: docs
store: "{store}"
model: {{name: double, version: "1.0.0", module: double_model}}
api:
  name: double
  resources:
    - name: twice
      kind: query
      inputs:
        x: {{type: number}}
"""

#: what the page shows when Swagger UI cannot read the document
UNRENDERED = ("Unable to render", "does not specify a valid version field")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], cwd: Path, ready: str) -> tuple[subprocess.Popen[str], str]:
    """A keel command serving on a free port, once ``ready`` (a path) answers 200."""
    import httpx2 as httpx

    port = _free_port()
    log_path = cwd / f"{args[-1]}-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keel.cli", *args, "--port", str(port)],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"keel {args[-1]} exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"keel {args[-1]} not ready: {log_path.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``{"platform": url, "model": url}``: ``keel server`` and ``keel serve`` of a trained
    model, on one store."""
    from keel.lifecycle.training import train

    root = tmp_path_factory.mktemp("docs")
    store = root / "store"
    (root / "double_model.py").write_text(MODEL_CODE)
    config = root / "keel.yml"
    config.write_text(CONFIG.format(store=store))
    train(config)
    platform, platform_url = _start(["--store", str(store), "server"], root, "/healthz")
    try:
        model, model_url = _start(["-c", str(config), "serve"], root, "/ready")
        try:
            yield {"platform": platform_url, "model": model_url}
        finally:
            _stop(model)
    finally:
        _stop(platform)


@pytest.mark.parametrize(
    ("server", "operations"),
    [
        ("platform", ("/api/v1/runs", "/api/v1/models")),
        ("model", ("/invocations", "/twice")),
    ],
)
def test_docs_lists_the_operations(
    browser: Any, servers: dict[str, str], server: str, operations: tuple[str, ...]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # a script or style refused by the Content-Security-Policy, or a file not found
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        answer = page.goto(f"{servers[server]}/docs")
        assert answer is not None and answer.status == 200
        # either the operations or Swagger UI's refusal of the document
        page.wait_for_selector(".opblock, .version-pragma, .errors-wrapper")
        text = page.inner_text("#swagger-ui")
        assert not [words for words in UNRENDERED if words in text], text[:500]
        # Swagger UI puts a zero-width space before each "/" so that long paths wrap
        paths = [
            path.replace("\u200b", "")
            for path in page.locator(".opblock .opblock-summary-path").all_inner_texts()
        ]
        for operation in operations:
            assert any(re.search(re.escape(operation) + r"\b", path) for path in paths), (
                f"{operation} is not among the operations {server}'s /docs lists: {paths}"
            )
        assert not errors, f"errors on {server}'s /docs: {errors}"
    finally:
        context.close()
