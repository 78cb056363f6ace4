"""Issue 22's end to end, without a browser: the iris example served by a real ``keel serve``
with recording on, fed over HTTP first with training-like and then with shifted inputs,
shows no drift and then drift on the shifted features, in the CLI and in the REST API of a
``keel server`` over the same store. The serving process profiles the records as it stores
them (nothing is profiled afterwards)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from keel.monitoring.storage import window_files
from keel_server import running_server
from monitoring.helpers import shifted, trained_iris, training_like

pytestmark = pytest.mark.slow

SHIFT = {"petal_length": 2.5, "petal_width": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keel_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def serve(project: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(f"keel serve exited: {process.stdout.read()}")  # type: ignore[union-attr]
    process.kill()
    raise AssertionError("keel serve did not answer /ping within 60 s")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def send(port: int, rows: Any) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for row in rows.to_dict("records"):
            answer = http.post("/iris/v1/species", json=row)
            assert answer.status_code == 200, answer.text


def live_rows(client: Any, mv: Any) -> int:
    from keel.monitoring.storage import load_windows

    return sum(p.records for _w, p in load_windows(client, window_files(client, mv)))


def wait_for_rows(client: Any, mv: Any, n: int) -> None:
    deadline = time.monotonic() + 30
    while live_rows(client, mv) < n:
        assert time.monotonic() < deadline, f"live profiles hold {live_rows(client, mv)} of {n}"
        time.sleep(0.3)


def test_a_served_model_shows_no_drift_then_drift_in_the_cli_and_the_api(tmp_path: Path) -> None:
    project, client, mv = trained_iris(tmp_path)
    config = yaml.safe_load((project / "keel.yml").read_text())
    config["api"]["record_flush_s"] = 0.2
    config["monitoring"] = {"flush_s": 0.5}
    (project / "keel.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    server = serve(project, port)
    try:
        send(port, training_like(project, 150))
        wait_for_rows(client, mv, 150)  # stored by the server while it runs
        calm = keel_cli(project, "monitor", "drift", "iris@1", "--since", "1h", "--json")
        assert calm.returncode == 0, calm.stdout + calm.stderr
        data = json.loads(calm.stdout)
        assert not data["drifted"] and data["current_rows"] == 150

        send(port, shifted(training_like(project, 450, seed=3), SHIFT))
    finally:
        stop(server)  # stores the last window's profile on the way out
    assert live_rows(client, mv) == 600
    assert {w.writer for w in window_files(client, mv)} != {"update"}  # profiled live
    drifted = keel_cli(project, "monitor", "drift", "iris@1", "--since", "1h")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "DRIFTED" in drifted.stdout

    from keel.server.settings import ServerSettings

    store = str(project / ".keel")
    with running_server(ServerSettings(store=store, work_dir=tmp_path / "work")) as platform:
        headers = {"Authorization": f"Bearer {platform.token}"}
        answer = httpx.get(
            f"{platform.url}/api/v1/model-versions/iris/1/drift",
            params={"project": "examples", "since": "1h", "window": "1h", "histograms": "true"},
            headers=headers,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["drifted"] and body["drifted_features"] == ["petal_length", "petal_width"]
        assert body["current_rows"] == 600 and "petal_length" in body["histograms"]
        bad = httpx.get(
            f"{platform.url}/api/v1/model-versions/iris/1/drift",
            params={"project": "examples", "since": "forever"},
            headers=headers,
            timeout=30,
        )
        assert bad.status_code == 422 and "not a duration" in str(bad.json()), bad.text
        anonymous = httpx.get(
            f"{platform.url}/api/v1/model-versions/iris/1/drift",
            params={"project": "examples"},
            timeout=30,
        )
        assert anonymous.status_code == 401
        profile = httpx.get(
            f"{platform.url}/api/v1/model-versions/iris/1/reference-profile",
            params={"project": "examples"},
            headers=headers,
            timeout=30,
        )
        assert profile.status_code == 200 and profile.json()["rows"] == 120
