"""Issue 22's end to end, without a browser: the iris example served by a real ``keel serve``
with recording on, fed over HTTP first with training-like and then with shifted inputs,
shows no drift and then drift on the shifted features, in the CLI and in the REST API of a
``keel server`` over the same store. The serving process profiles the records as it stores
them (nothing is profiled afterwards)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
import pytest

from keel.monitoring.storage import window_files
from keel_server import running_server
from monitoring.helpers import (
    free_port,
    keel_cli,
    live_records,
    recording_quickly,
    send,
    serve_model,
    shifted,
    stop_model,
    trained_iris,
    training_like,
    wait_for_live_records,
)

pytestmark = pytest.mark.slow

SHIFT = {"petal_length": 2.5, "petal_width": 1.0}


def test_a_served_model_shows_no_drift_then_drift_in_the_cli_and_the_api(tmp_path: Path) -> None:
    project, client, mv = trained_iris(tmp_path)
    recording_quickly(project)
    port = free_port()
    server = serve_model(project, port)
    try:
        send(port, training_like(project, 150))
        wait_for_live_records(client, mv, 150)  # stored by the server while it runs
        calm = keel_cli(project, "monitor", "drift", "iris@1", "--since", "1h", "--json")
        assert calm.returncode == 0, calm.stdout + calm.stderr
        data = json.loads(calm.stdout)
        assert not data["drifted"] and data["current_rows"] == 150

        send(port, shifted(training_like(project, 450, seed=3), SHIFT))
    finally:
        stop_model(server)  # stores the last window's profile on the way out
    assert live_records(client, mv) == 600
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
