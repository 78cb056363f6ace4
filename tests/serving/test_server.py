"""`keel serve` as real uvicorn processes on loopback: workers, SIGTERM flush, bad refs."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from tests.serving.conftest import reconfigure, start_server
from tests.serving.test_api import BASE
from tests.test_cli import keel

pytestmark = pytest.mark.slow

# uvicorn re-raises the signal it stopped on once shutdown is complete
CLEAN_EXIT = (0, -signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"keel serve exited early:\n{proc.stdout.read()}")
        try:
            if httpx2.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("keel serve did not become ready")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_sigterm_after_a_burst_stores_every_record(trained: Path) -> None:
    import keel as keel_api

    # A long flush interval: the records are still queued when SIGTERM arrives.
    cfg = trained / "keel.yml"
    cfg.write_text(cfg.read_text().replace("record_flush_s: 0.2", "record_flush_s: 30"))
    port = _free_port()
    proc = start_server(trained, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        with httpx2.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: client.post(f"{BASE}/score", json={"x": i % 40}), range(400))
            )
        assert all(a.status_code == 200 for a in answers)
        ids = {a.headers["x-request-id"] for a in answers}
        assert keel_api.Client().find_invocations("scorer@1", limit=None) == []  # still queued
    finally:
        out = _stop(proc)
    assert proc.returncode in CLEAN_EXIT, out
    records = keel_api.Client().find_invocations("scorer@1", limit=None)
    assert {r.request_id for r in records} == ids
    assert (trained / "lifecycle.log").read_text().splitlines() == ["setup", "teardown"]


def test_several_workers_each_load_the_model_and_share_metrics(trained: Path) -> None:
    reconfigure(trained, record=False, batching=True)
    port = _free_port()
    proc = start_server(trained, port, 2)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        with httpx2.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: client.post("/invocations", json={"x": i % 40}), range(200))
            )
            bad = [a.text for a in answers if a.status_code != 200]
            assert not bad, bad[:3]
            assert [a.json()["result"]["score"] for a in answers] == [
                (i % 40) * 3.0 for i in range(200)
            ]
            deadline = time.monotonic() + 30
            while (trained / "lifecycle.log").read_text().count("setup") < 2:
                assert time.monotonic() < deadline, "the second worker never set up"
                time.sleep(0.2)
            metrics = client.get("/metrics").text
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith("keel_requests_total{") and 'route="/invocations"' in x
        )
        assert float(line.rsplit(" ", 1)[1]) == 200  # both workers' counts, summed
    finally:
        out = _stop(proc)
    assert proc.returncode in CLEAN_EXIT, out
    log = (trained / "lifecycle.log").read_text().splitlines()
    assert log.count("setup") == 2 and log.count("teardown") == 2


def test_serve_unknown_model_is_one_line(trained: Path) -> None:
    out = keel("serve", "nosuchmodel@3", "--port", str(_free_port()), cwd=trained)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error:") and len(out.stderr.strip().splitlines()) == 1


def test_serve_bad_api_config_names_the_line(trained: Path) -> None:
    cfg = trained / "keel.yml"
    cfg.write_text(cfg.read_text().replace("type: number, min: -100", "type: decimal, min: -100"))
    out = keel("serve", "--port", str(_free_port()), cwd=trained)
    assert out.returncode == 1
    assert "keel.yml line" in out.stderr and "decimal" in out.stderr
