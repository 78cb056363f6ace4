"""The jobs routes of the platform server: ``/api/v1/jobs`` and the ``/jobs`` pages list, show
and cancel every job of the server's executor; viewers read, editors cancel (with the CSRF
token on the page's form). The executor is the one ``keel server`` resolves from keel.yml's
``jobs:`` section, its records where ``keel jobs`` finds them."""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keel.jobs import Executor, JobSpec
from keel.jobs.local import LocalExecutor
from keel.server.app import create_app
from keel.server.executor import server_executor
from keel.server.settings import ServerSettings

PASSWORD = "correct-horse"

JOB_CODE = textwrap.dedent(
    """
    import time

    def ok():
        print("all good", flush=True)
        return {"answer": 42}

    def sleeps(seconds=60):
        print("sleeping", flush=True)
        time.sleep(seconds)
    """
)


@dataclass
class Server:
    app: FastAPI
    code: Path
    editor: TestClient  # a session (the pages)
    viewer: TestClient
    editor_api: TestClient  # a bearer token (the REST API)
    viewer_api: TestClient


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(app: FastAPI, name: str) -> TestClient:
    tc = TestClient(app)
    tc.__enter__()
    token = csrf_of(tc.get("/login").text)
    answer = tc.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/jobs"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return tc


def with_token(app: FastAPI, name: str) -> TestClient:
    tc = TestClient(app)
    tc.__enter__()
    tc.headers["Authorization"] = f"Bearer {app.state.accounts.create_token(name, 'jobs')[1]}"
    return tc


def start(server: Server, target: str) -> str:
    executor = server_executor(server.app.state)
    return executor.submit(JobSpec(target, env={"PYTHONPATH": str(server.code)})).id


def wait_running(executor: Executor, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while "sleeping" not in executor.logs(job_id):
        assert time.monotonic() < deadline, executor.logs(job_id)
        time.sleep(0.05)


def stop_all(executor: Executor) -> None:
    for job in executor.list():
        if not job.done:
            executor.cancel(job.id)
            executor.wait(job.id, timeout_s=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("jobs-server")
    (root / "code").mkdir()
    (root / "code" / "jobcode.py").write_text(JOB_CODE)
    config = root / "keel.yml"
    config.write_text("jobs:\n  executor: local\n  max_parallel: 2\n  jobs_dir: records\n")
    settings = ServerSettings.resolve(config, store=str(root / "store"))
    assert settings.executor == "local" and settings.jobs_dir == root / "records"
    app = create_app(settings)
    app.state.accounts.add_user("eddie", PASSWORD, "editor")
    app.state.accounts.add_user("vera", PASSWORD, "viewer")
    made = Server(
        app,
        root / "code",
        login(app, "eddie"),
        login(app, "vera"),
        with_token(app, "eddie"),
        with_token(app, "vera"),
    )
    yield made
    stop_all(server_executor(app.state))
    for tc in (made.editor, made.viewer, made.editor_api, made.viewer_api):
        tc.__exit__(None, None, None)
    app.state.client.close()


def test_the_server_uses_the_configured_executor_and_jobs_folder(server: Server) -> None:
    executor = server_executor(server.app.state)
    assert isinstance(executor, LocalExecutor) and executor.max_parallel == 2
    assert executor.jobs_dir.name == "records"
    from keel.server.pipelines.service import _make

    assert _make(server.app.state).jobs.executor is executor  # pipelines share it


def test_the_api_lists_shows_and_reads_the_logs_of_jobs(server: Server) -> None:
    executor = server_executor(server.app.state)
    job_id = start(server, "jobcode:ok")
    assert executor.wait(job_id, timeout_s=60).status == "finished"
    api = server.viewer_api
    listed = api.get("/api/v1/jobs")
    assert listed.status_code == 200
    assert job_id in [j["id"] for j in listed.json()]
    finished = api.get("/api/v1/jobs", params={"status": "finished"}).json()
    assert all(j["status"] == "finished" for j in finished) and job_id in [
        j["id"] for j in finished
    ]
    limited = api.get("/api/v1/jobs", params={"status": ["finished", "failed"], "limit": 1})
    assert len(limited.json()) == 1
    bad = api.get("/api/v1/jobs", params={"status": "nope"})
    assert bad.status_code == 422 and "unknown job status 'nope'" in bad.json()["message"]
    shown = api.get(f"/api/v1/jobs/{job_id}").json()
    assert shown["status"] == "finished" and shown["result"] == {"answer": 42}
    assert (
        shown["executor"] == "local" and shown["exit_code"] == 0 and shown["target"] == "jobcode:ok"
    )
    log = api.get(f"/api/v1/jobs/{job_id}/logs").json()
    assert log["status"] == "finished" and "all good" in log["log"]
    assert api.get("/api/v1/jobs/20990101-000000-00000000").status_code == 404
    assert api.get("/api/v1/jobs/..%2Fetc").status_code in (404, 422)
    assert TestClient(server.app).get("/api/v1/jobs").status_code == 401  # nobody


def test_only_editors_cancel_through_the_api(server: Server) -> None:
    executor = server_executor(server.app.state)
    job_id = start(server, "jobcode:sleeps")
    wait_running(executor, job_id)
    denied = server.viewer_api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert denied.status_code == 403
    assert executor.status(job_id).status == "running"
    asked = server.editor_api.post(f"/api/v1/jobs/{job_id}/cancel")
    assert asked.status_code == 200 and asked.json()["cancel_requested"] is True
    assert executor.wait(job_id, timeout_s=30).status == "cancelled"
    again = server.editor_api.post(f"/api/v1/jobs/{job_id}/cancel").json()
    assert again["status"] == "cancelled"  # a done job is left as it is


def _cancel_form(html: str, job_id: str) -> bool:
    return f'action="/jobs/{job_id}/cancel"' in html


def test_the_jobs_pages_show_status_logs_and_a_cancel_button_for_editors(
    server: Server,
) -> None:
    executor = server_executor(server.app.state)
    job_id = start(server, "jobcode:sleeps")
    wait_running(executor, job_id)

    page = server.viewer.get("/jobs")
    assert page.status_code == 200 and job_id in page.text and "running" in page.text
    assert '<a href="/jobs">Jobs</a>' in page.text  # in the top bar
    assert not _cancel_form(page.text, job_id)  # viewers get no button
    job_page = server.viewer.get(f"/jobs/{job_id}")
    assert job_page.status_code == 200 and "sleeping" in job_page.text
    assert 'hx-trigger="every 1s"' in job_page.text and not _cancel_form(job_page.text, job_id)
    assert server.viewer.get("/jobs", params={"status": "queued"}).status_code == 200
    assert server.viewer.get("/jobs", params={"status": "bogus"}).status_code == 422

    editor_page = server.editor.get("/jobs")
    assert _cancel_form(editor_page.text, job_id)
    token = csrf_of(editor_page.text)
    refused = server.viewer.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403
    no_csrf = server.editor.post(f"/jobs/{job_id}/cancel", data={}, follow_redirects=False)
    assert no_csrf.status_code == 403
    assert executor.status(job_id).status == "running"
    done = server.editor.post(
        f"/jobs/{job_id}/cancel",
        data={"csrf_token": token, "next": "/jobs"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/jobs"
    assert executor.wait(job_id, timeout_s=30).status == "cancelled"
    fragment = server.viewer.get(f"/jobs/{job_id}/status").text
    assert 'data-status="cancelled"' in fragment and "hx-trigger" not in fragment
    assert "Cancelled: cancelled" in fragment
    missing = server.viewer.get("/jobs/20990101-000000-00000000")
    assert missing.status_code == 404
