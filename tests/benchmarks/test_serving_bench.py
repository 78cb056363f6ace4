"""The serving benchmark (``python -m bench --only serving``): its parts, at tiny sizes.

Checked here, not timed: BentoML's service file serves the benchmark's model and answers one
request right (when BentoML's venv ``.venv-bentoml`` is built; skipped otherwise), a server's
CPU time and its stop reach every process it started, even one in a session of its own (as
BentoML's worker is), and the recording cost is shown round by round from the rounds' figures.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench package lives next to src/, not inside keel
    sys.path.insert(0, str(REPO))

from bench import serving_bench  # noqa: E402
from bench.report import Report  # noqa: E402

# A parent that starts a child in a new session, prints its pid, then both keep busy.
FAMILY = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "while True: sum(range(10_000))"], start_new_session=True
)
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs 5 s on (a SIGKILL takes a moment; a zombie does not run)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "Z":
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="processes are read from /proc")
def test_server_counts_and_stops_a_child_in_its_own_session(tmp_path: Path) -> None:
    variant = serving_bench.Variant(
        name="family",
        command=[sys.executable, "-c", FAMILY],
        ready_path="/",
        paths=[],
        body={},
    )
    server = serving_bench.Server(variant, 0, tmp_path / "family.log", cpus=None)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "family.log").read_text().strip():
            assert time.monotonic() < deadline, "the child's pid was never printed"
            time.sleep(0.05)
        child = int((tmp_path / "family.log").read_text().split()[0])
        assert os.getsid(child) == child != os.getpgid(server.proc.pid)
        assert child in server.processes()
        before = server.cpu_seconds()
        time.sleep(0.5)
        after = server.cpu_seconds()
        assert before is not None and after is not None
        assert after - before > 0.1  # the busy child's CPU time is counted
    finally:
        server.stop()
    assert not _alive(child)


def _outcome(name: str, cpu: float | None) -> serving_bench.Outcome:
    peak = {"rps": 1000.0} if cpu is None else {"rps": 1000.0, "server_cpu_us": cpu}
    return serving_bench.Outcome(name, 1, peak=peak)


def test_recording_cost_is_shown_round_by_round() -> None:
    measured = {
        "keel": [_outcome("keel", 400.0), _outcome("keel", 500.0), _outcome("keel", 420.0)],
        "keel-recording": [
            _outcome("keel-recording", 420.0),
            _outcome("keel-recording", 500.0),
            _outcome("keel-recording", None),
        ],
    }
    rows = serving_bench.recording_rounds(measured)
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert rows[0]["cost_percent"] == pytest.approx(5.0)
    assert rows[1]["cost_percent"] == pytest.approx(0.0)
    assert rows[2]["cost_percent"] is None  # a round without a figure is shown, not guessed
    report = Report(config={})
    console = Console(record=True, width=120)
    serving_bench._recording_rounds(measured, report, console)
    text = console.export_text()
    assert "+5.0%" in text and "median" in text
    assert report.details["serving"]["recording_rounds"] == rows


def _bentoml_or_skip() -> Path:
    try:
        return serving_bench.bentoml_python(create=False)
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.mark.skipif(sys.platform != "linux", reason="server processes are read from /proc")
def test_bentoml_service_answers_one_row(tmp_path: Path) -> None:
    _bentoml_or_skip()
    port = serving_bench.free_port()
    variant = serving_bench._bentoml(None)(tmp_path, serving_bench._fit(), port, 1)
    assert variant.body == {"rows": [serving_bench.ROW]}
    server = serving_bench.Server(variant, port, tmp_path / "bentoml.log", cpus=None)
    try:
        server.wait_ready()
        status, text = serving_bench.post(server.url(variant.paths[0]), variant.body)
        assert status == 200, text
        assert json.loads(text) == [serving_bench.EXPECTED]
        workers = set(server.processes()) - {server.proc.pid}
        assert workers  # BentoML's worker, in a session of its own, is counted
    finally:
        server.stop()
    assert not any(_alive(pid) for pid in workers)
