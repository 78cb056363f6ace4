"""Eight processes writing to one store at once, on SQLite and PostgreSQL: every run, metric
point, param, tag, artifact and model version is found afterwards; versions are numbered
1..N per model with no gap and no duplicate; every version's artifact verifies against its
content hash; aliases end on versions their writers set; no process fails and none prints
"database is locked".

The writers are real processes (``concurrency_worker.py``) held behind a file barrier until
all of them are connected, so that their writes overlap instead of running one after the
other. Rerun: ``.venv/bin/pytest tests/tracking/test_concurrency_8.py -m slow``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keel import Client

WORKERS = 8
RUNS = 3
STEPS = 150  # points per key of the buffered log_metrics calls ("loss" and "acc")
BATCHED = 200  # points per run in one log_batch call (one transaction)
SINGLES = 50  # points per run by one-by-one log_metric calls
SHARED_PER_RUN = 2  # versions of "shared" per run, from the same run and path
WORKER_SCRIPT = Path(__file__).with_name("concurrency_worker.py")
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 300.0


def _start_writers(store_url: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Start the writers, open the barrier once all are connected, return their reports."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    Client(store=store_url, project="test").get_or_create_exp("load")  # schema made once
    shared_args = [store_url, str(tmp_path / "artifacts"), str(tmp_path / "cache")]
    numbers = [str(n) for n in (RUNS, STEPS, BATCHED, SINGLES, SHARED_PER_RUN)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), *shared_args, str(w), str(barrier), *numbers],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(list(barrier.glob("ready-*"))) < WORKERS:
            early = [p for p in procs if p.poll() is not None]
            assert not early, f"a writer ended before the start: {early[0].communicate()[1]}"
            assert time.monotonic() < deadline, "the writers did not all connect in time"
            time.sleep(0.01)
        (barrier / "go").touch()
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
            assert proc.returncode == 0, err
            assert "locked" not in err.lower(), err
            assert "Traceback" not in err, err
            reports.append(json.loads(out))
        return reports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_eight_processes_lose_nothing_and_number_versions_gaplessly(
    store_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    reports = _start_writers(store_url, tmp_path)
    elapsed = time.monotonic() - started
    # they really ran at the same time: the last to start began before the first ended
    assert max(r["started"] for r in reports) < min(r["ended"] for r in reports)
    client = Client(
        store=store_url,
        artifacts=str(tmp_path / "artifacts"),
        cache_dir=tmp_path / "check-cache",
        project="test",
    )

    # runs, params, tags, metrics: every one written is there
    runs = {r.id: r for r in client.find_runs({"exp.name": "load"})}
    written = {run["id"]: (rep["worker"], run) for rep in reports for run in rep["runs"]}
    assert set(runs) == set(written) and len(runs) == WORKERS * RUNS
    points = 0
    for run_id, (worker, run) in written.items():
        found = runs[run_id]
        assert found.status == "finished"
        assert found.params == {"worker": worker, "run": run["r"], "lr": 0.01 * (run["r"] + 1)}
        assert found.tags["phase"] == "train" and found.tags[f"round{run['r']}"] == run["r"]
        assert found.tags["batch"] == "done" and found.tags["worker"] == worker
        expected = {"loss": STEPS, "acc": STEPS, "batched": BATCHED, "single": SINGLES}
        for key, count in expected.items():
            history = client.get_metric_history(run_id, key)
            assert [m.step for m in history] == list(range(count)), (run_id, key)
            points += len(history)
        assert found.metrics["single"] == SINGLES - 1
        data = client.get_run_artifact(run_id, "data/data.bin")
        assert hashlib.sha256(data.read_bytes()).hexdigest() == run["artifact_sha"]
    assert points == WORKERS * RUNS * (2 * STEPS + BATCHED + SINGLES)

    # versions: unique, gapless, each the content its writer registered, each verifying
    per_model = {"shared": WORKERS * RUNS * SHARED_PER_RUN, "other": WORKERS * RUNS}
    registered = {(m, v): (h, label) for rep in reports for m, v, h, label in rep["versions"]}
    assert len(registered) == sum(per_model.values())
    for name, count in per_model.items():
        versions = client.get_model(name).find_versions()
        assert sorted(v.version for v in versions) == list(range(1, count + 1)), name
        for v in versions:
            assert (v.content_hash, v.label) == registered[(name, v.version)]
            path = client.get_model_artifact((name, v.version))  # checks the content hash
            assert hashlib.sha256(path.read_bytes()).hexdigest() == v.content_hash

    # aliases and model tags: each worker's own alias ends on its last version
    shared = client.get_model("shared")
    for rep in reports:
        last = max(v for m, v, _h, _l in rep["versions"] if m == "shared")
        assert shared.aliases[f"w{rep['worker']}"] == last
        assert shared.tags[f"w{rep['worker']}"] == RUNS - 1
    assert shared.aliases["champion"] in {v for (m, v) in registered if m == "shared"}
    print(
        f"\n{WORKERS} processes: {len(runs)} runs, {points} metric points, "
        f"{len(registered)} versions in {elapsed:.1f} s"
    )
