"""The tracking load benchmark's generator and checks, at a tiny size against a real
``keel server`` on SQLite: 2 clients for 1 s per scenario and API (shape, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from bench.mlflow_wire import _keel_server
from bench.serving_bench import REPO, Server, free_port
from bench.tracking_load import (
    System,
    _history_counts,
    _mlflow_experiment,
    _mlflow_runs,
    call,
)


def _loadgen(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tracking_loadgen", "--clients", "2", "--seconds", "1", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def keel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    folder = tmp_path_factory.mktemp("tracking-load")
    port = free_port()
    variant, token = _keel_server(folder, port)
    server = Server(variant, port, folder / "keel.log", None)
    try:
        server.wait_ready()
        yield server, token
    finally:
        server.stop()


@pytest.mark.parametrize("api", ["mlflow", "keel"])
def test_batches_are_counted_and_stored_once_each(keel: tuple[Server, str], api: str) -> None:
    server, token = keel
    base = server.url("")
    experiment = _mlflow_experiment(base, f"batch-{api}", token)
    runs = _mlflow_runs(base, experiment, 2, token)
    found = _loadgen(
        "--scenario", "batch", "--api", api, "--base", base, "--runs", ",".join(runs),
        "--token", token,
    )  # fmt: skip
    assert found["errors"] == 0 and found["first_error"] is None
    assert found["ok"] > 0 and found["requests"] == found["ok"]
    assert sum(found["ok_per_run"].values()) == found["ok"]
    assert set(found["ok_per_run"]) == set(runs)  # one run per client
    assert found["p50_ms"] is not None and found["p99_ms"] >= found["p50_ms"]
    assert _history_counts(base, api, runs, token) == found["ok_per_run"]


@pytest.mark.parametrize("api", ["mlflow", "keel"])
def test_searches_return_the_newest_runs_first(keel: tuple[Server, str], api: str) -> None:
    server, token = keel
    base = server.url("")
    experiment = _mlflow_experiment(base, f"search-{api}", token)
    system = System("keel", server, api, token)
    names = []
    for i in range(3):
        body = {"experiment_id": experiment, "start_time": 1_000 + i, "run_name": f"r{i}"}
        call(base, "POST", "/api/2.0/mlflow/runs/create", body, token)
        names.append(f"r{i}")
    found = _loadgen(
        "--scenario", "search", "--api", system.api, "--base", base, "--experiment", experiment,
        "--token", token,
    )  # fmt: skip
    assert found["errors"] == 0 and found["ok"] > 0
    assert found["first_names"] == names[::-1]
    assert found["bytes_min"] == found["bytes_max"] > 0
