"""Uploaded pipelines run in processes of their own, under a time limit and a memory limit,
and what they print or return is shown escaped or sanitised, never live.

One server (through its ASGI app, in this process) with ``job_timeout_s`` 20 and
``job_memory_mb`` 1024, and three pipelines:

* a memory hog, whose training allocates 256 MB arrays until it cannot: its job fails with
  "exceeded the memory limit of 1024 MB" on its page, and the server answers as before
  (its own address space is not limited);
* a sleeper, whose training sleeps past the time limit: stopped, with the limit on its page;
* a hostile one, which prints ``<script>`` and ``<img onerror>`` into its log, returns them
  in its table, its column names, its graph and its text, raises them as its training
  error, and writes its own process id, process group and memory limit: the pages show the
  markup escaped (log, table, error) or removed (text, by nh3), never as live HTML, and the
  ids prove it ran in another process, in another process group, under the limit.
"""

from __future__ import annotations

import os
import re
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.server.app import create_app
from keel.server.settings import ServerSettings

PASSWORD = "correct-horse"
TIMEOUT_S = 20.0  # room for the job's imports on a loaded machine
MEMORY_MB = 1024  # pandas, pyarrow and numpy load under it (see keel.jobs.worker.limit_memory)
JOB_WAIT_S = 240.0

MEMORY_HOG = textwrap.dedent(
    """
    import numpy as np

    def train(inpt, params=None):
        held = []
        for n in range(256):  # 64 GB at most: never reached under the limit
            held.append(np.zeros(256 * 1024 * 1024 // 8))  # 256 MB of address space
            print(f"holding {(n + 1) * 256} MB", flush=True)

    def run_pipeline(input, model, args, params=None):
        return {}
    """
)

SLEEPER = textwrap.dedent(
    """
    import time

    def train(inpt, params=None):
        print("sleeping past the limit", flush=True)
        time.sleep(600)

    def run_pipeline(input, model, args, params=None):
        return {}
    """
)

HOSTILE = textwrap.dedent(
    """
    import os
    import resource

    def _who():
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        return f"pid={os.getpid()} pgid={os.getpgrp()} limit={limit}"

    def train(inpt, params=None):
        raise ValueError("<img src=x onerror=alert(9)> training refused")

    def run_pipeline(input, model, args, params=None):
        print("<script>alert(1)</script>", flush=True)
        print("<img src=x onerror=alert(2)>", flush=True)
        print("WHO " + _who(), flush=True)
        graph = {"data": [{"type": "bar", "x": [1], "y": [2]}],
                 "layout": {"title": "</script><script>alert(10)</script>"}}
        return {
            "data": [["<script>alert(3)</script>", "<img src=x onerror=alert(4)>"],
                     ["plain", "text"]],
            "columns": ["<b onmouseover=alert(5)>first</b>", "second"],
            "graphs": [graph],
            "text": "<p>report</p><script>alert(6)</script><img src=x onerror=alert(7)>"
                    "<a href=\\"javascript:alert(8)\\">link</a><p>WHO " + _who() + "</p>",
        }
    """
)


@dataclass
class Server:
    app: FastAPI
    editor: TestClient


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits")
    settings = ServerSettings(
        store=str(root / "store"),
        work_dir=root / "work",
        job_timeout_s=TIMEOUT_S,
        job_memory_mb=MEMORY_MB,
    )
    app = create_app(settings)
    app.state.accounts.add_user("eddie", PASSWORD, "editor")
    with TestClient(app) as tc:
        token = _csrf(tc.get("/login").text)
        answer = tc.post(
            "/login",
            data={"name": "eddie", "password": PASSWORD, "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        for name, code in (("hog", MEMORY_HOG), ("sleeper", SLEEPER), ("hostile", HOSTILE)):
            uploaded = tc.post(
                "/pipelines/upload",
                files=[("control", (f"{name}.py", code.encode()))],
                data={"csrf_token": _csrf(tc.get("/pipelines").text)},
                follow_redirects=False,
            )
            assert uploaded.status_code == 303, uploaded.text
        saved = tc.post(
            "/pipelines/inputs",
            files={"file": ("in.txt", b"x\n")},
            data={"csrf_token": _csrf(tc.get("/pipelines").text)},
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        yield Server(app, tc)
        service = getattr(app.state, "pipeline_service", None)
        if service is not None:  # leave nothing running
            for job in service.jobs.executor.list():
                if not job.done:
                    service.jobs.executor.cancel(job.id)
                    service.jobs.executor.wait(job.id, timeout_s=15)
    app.state.client.close()


def submit(server: Server, name: str, action: str) -> str:
    tc = server.editor
    answer = tc.post(
        f"/pipelines/{name}/{action}",
        data={"csrf_token": _csrf(tc.get(f"/pipelines/{name}").text), "input": "in.txt"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def wait_for(server: Server, job_id: str) -> str:
    """The job's page once the job is done."""
    deadline = time.monotonic() + JOB_WAIT_S
    while True:
        fragment = server.editor.get(f"/pipelines/jobs/{job_id}/status").text
        status = re.search(r'data-status="([a-z_]+)"', fragment).group(1)  # type: ignore[union-attr]
        if status not in ("queued", "running"):
            page = server.editor.get(f"/pipelines/jobs/{job_id}")
            assert page.status_code == 200
            return page.text
        assert time.monotonic() < deadline, f"job {job_id} still {status}"
        time.sleep(0.5)


def status_of(page: str) -> str:
    return re.search(r'data-status="([a-z_]+)"', page).group(1)  # type: ignore[union-attr]


def assert_nothing_live(page: str) -> None:
    """No script the pipeline wrote, and no event handler it wrote, is live on ``page``."""
    assert not re.search(r"<script>\s*alert", page, re.I), "a pipeline's <script> is live"
    assert not re.search(r"<img[^>]*\bonerror", page, re.I), "a pipeline's onerror is live"
    assert not re.search(r"<[a-z]+[^>]*\bonmouseover", page, re.I), "an event handler is live"
    assert "javascript:alert" not in page


# --------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_a_pipeline_over_its_memory_limit_fails_saying_so_and_the_server_lives(
    server: Server,
) -> None:
    import resource

    ours = resource.getrlimit(resource.RLIMIT_AS)
    job_id = submit(server, "hog", "train")
    page = wait_for(server, job_id)
    assert status_of(page) == "failed", page
    assert f"exceeded the memory limit of {MEMORY_MB} MB" in unescape(page)
    assert "MemoryError" in page and "holding 256 MB" in page  # it ran, then hit the wall
    assert "holding 1280 MB" not in page  # never past the limit
    # the server process was never limited and still answers
    assert resource.getrlimit(resource.RLIMIT_AS) == ours
    assert server.editor.get("/pipelines").status_code == 200
    job = server.app.state.pipeline_service.jobs.get(job_id)
    assert job.error.startswith(f"the job exceeded the memory limit of {MEMORY_MB} MB")


@pytest.mark.slow
def test_a_pipeline_over_its_time_limit_is_stopped_saying_so(server: Server) -> None:
    started = time.monotonic()
    job_id = submit(server, "sleeper", "train")
    page = wait_for(server, job_id)
    assert status_of(page) == "timed_out", page
    assert f"stopped after its {TIMEOUT_S:g} s time limit" in page
    assert "sleeping past the limit" in page
    assert time.monotonic() - started < JOB_WAIT_S


@pytest.mark.slow
def test_what_a_pipeline_prints_and_returns_is_never_live_and_it_ran_elsewhere(
    server: Server,
) -> None:
    failed = wait_for(server, submit(server, "hostile", "train"))
    assert status_of(failed) == "failed"
    assert "&lt;img src=x onerror=alert(9)&gt; training refused" in failed  # escaped
    assert_nothing_live(failed)

    page = wait_for(server, submit(server, "hostile", "run"))
    assert status_of(page) == "finished", page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the log, escaped
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert_nothing_live(page)

    link = re.search(r'href="/pipelines/runs/([0-9a-f]+)"', page)
    assert link, page
    results = server.editor.get(f"/pipelines/runs/{link.group(1)}")
    assert results.status_code == 200
    html = results.text
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html  # table cells, escaped
    assert "&lt;img src=x onerror=alert(4)&gt;" in html
    assert "&lt;b onmouseover=alert(5)&gt;first&lt;/b&gt;" in html  # a column name, escaped
    assert "<p>report</p>" in html  # the text: harmless HTML kept, the rest removed by nh3
    assert "alert(6)" not in html and "alert(7)" not in html and "alert(8)" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(10)" in html  # the graph, as data
    assert_nothing_live(html)

    who = re.search(r"WHO pid=(\d+) pgid=(\d+) limit=(-?\d+)", html)
    assert who, html
    pid, pgid, limit = (int(g) for g in who.groups())
    assert pid != os.getpid(), "the pipeline ran in the server's own process"
    assert pgid != os.getpgrp(), "the pipeline ran in the server's process group"
    assert limit == MEMORY_MB * 1024 * 1024
    assert f"WHO pid={pid} pgid={pgid}" in page  # the log says the same


def test_the_memory_limit_is_a_setting_with_a_default(tmp_path: Path) -> None:
    """``server.job_memory_mb`` in keel.yml reaches the server's settings (2048 by default,
    ``null`` for none)."""
    (tmp_path / "keel.yml").write_text("server: {job_memory_mb: 512}\n")
    assert ServerSettings.resolve(tmp_path / "keel.yml").job_memory_mb == 512
    (tmp_path / "keel.yml").write_text("server: {job_memory_mb: null}\n")
    assert ServerSettings.resolve(tmp_path / "keel.yml").job_memory_mb is None
    (tmp_path / "keel.yml").write_text("project: p\n")
    assert ServerSettings.resolve(tmp_path / "keel.yml").job_memory_mb == 2048
    settings: Any = ServerSettings(store=str(tmp_path / "store"))
    assert settings.job_memory_mb == 2048
