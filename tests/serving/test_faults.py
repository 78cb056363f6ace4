"""Faults of a served model, on a real `keel serve` process: calls that raise or hang, and
SIGTERM under sustained load.

The model answers ``y = 2x``; ``x = -1`` raises, ``x = 999`` sleeps ``hang`` seconds, far
past the time limit given with ``keel serve --timeout``. Each test prints one line of
numbers (run with ``-s`` to see them).
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from tests.serving.conftest import start_server
from tests.serving.test_server import CLEAN_EXIT, _free_port, _wait_ready

pytestmark = pytest.mark.slow

MODEL_CODE = '''
import time

import keel


class Faulty(keel.Model):
    """y = 2x; x = -1 raises; x = 999 sleeps ``hang`` seconds (a call that hangs)."""

    def train(self, ctx):
        return {"weight": 2.0}

    def predict(self, ctx, fitted, inputs):
        return self._one(fitted, inputs)

    def predict_batch(self, ctx, fitted, batch):
        return [self._one(fitted, row) for row in batch]

    def _one(self, fitted, inputs):
        x = inputs["x"]
        if x == -1:
            raise ValueError("x = -1 breaks this model")
        if x == 999:
            time.sleep(inputs.get("hang", 60))
        return {"y": x * fitted["weight"]}
'''

CONFIG = """\
project: faults
model: {{name: faulty, version: "1.0.0", module: faulty_model}}
api:
  name: faulty
  record_invokes: true
  record_flush_s: {flush_s}
  model_threads: {threads}
  max_hung_calls: {max_hung}
  batching: {{enabled: {batching}, max_batch_size: 8, max_wait_ms: 2}}
  resources:
    - {{name: predict, kind: query}}
"""

PREDICT = "/faulty/v1/predict"
TIMEOUT_S = 2.0  # keel serve --timeout
HANG_S = 12.0  # how long a hanging call sleeps: six times the limit


def _project(
    root: Path, *, threads: int, max_hung: int, batching: bool, flush_s: float = 0.5
) -> Path:
    (root / "faulty_model.py").write_text(MODEL_CODE)
    (root / "keel.yml").write_text(
        CONFIG.format(
            threads=threads, max_hung=max_hung, batching=str(batching).lower(), flush_s=flush_s
        )
    )
    from keel.lifecycle.training import train

    train(root / "keel.yml")
    return root


@dataclass
class Answer:
    kind: str  # "normal", "raise" or "hang"
    payload: dict
    status: int
    seconds: float
    body: dict
    request_id: str | None


@dataclass
class Log:
    answers: list[Answer] = field(default_factory=list)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, kind: str) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind]


def _send(client: httpx2.Client, log: Log, kind: str, payload: dict) -> Answer | None:
    started = time.perf_counter()
    try:
        response = client.post(PREDICT, json=payload)
    except httpx2.TransportError:
        with log.lock:
            log.transport_errors += 1
        return None
    body = response.json() if response.content else {}
    request_id = response.headers.get("x-request-id") or body.get("request_id")
    elapsed = time.perf_counter() - started
    answer = Answer(kind, payload, response.status_code, elapsed, body, request_id)
    with log.lock:
        log.answers.append(answer)
    return answer


class Served:
    """A `keel serve` process whose output is read as it comes (a full pipe would stall
    the server's logging, and with it the server)."""

    def __init__(self, root: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = start_server(root, port, 1, "--timeout", str(TIMEOUT_S))
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _wait_ready(self.proc, self.url)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait(self, timeout: float) -> str:
        """Wait for the process to exit (killing it after ``timeout``); its output."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        return self.output

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(60)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """Start `keel serve --timeout 2` on the project; the test stops it (or this does)."""
    started: list[Served] = []

    def start(**project: object) -> Served:
        _project(tmp_path, **project)  # type: ignore[arg-type]
        served = Served(tmp_path)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def _metric(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(name + "{")).split()[-1]


def _records() -> dict[str, str]:
    import keel

    return {r.request_id: r.status for r in keel.Client().find_invocations("faulty@1", limit=None)}


@pytest.mark.parametrize("batching", [False, True], ids=["single", "batching"])
def test_raising_and_hanging_calls_leave_the_others_answered(serve, batching: bool) -> None:
    max_hung = 3
    served = serve(threads=4, max_hung=max_hung, batching=batching)
    url = served.url
    log = Log()
    done = threading.Event()

    def normal(worker: int) -> None:
        with httpx2.Client(base_url=url, timeout=60) as client:
            i = 0
            while not done.is_set():
                i += 1
                _send(client, log, "normal", {"x": worker * 1000 + i % 500})

    def raising() -> None:
        with httpx2.Client(base_url=url, timeout=60) as client:
            for _ in range(20):
                _send(client, log, "raise", {"x": -1})
                time.sleep(0.1)

    def hanging() -> None:  # two hung calls, one after the other: fewer than max_hung
        with httpx2.Client(base_url=url, timeout=60) as client:
            for _ in range(2):
                _send(client, log, "hang", {"x": 999, "hang": HANG_S})

    started = time.perf_counter()
    with ThreadPoolExecutor(6) as pool:
        workers = [pool.submit(normal, w) for w in range(4)]
        faults = [pool.submit(raising), pool.submit(hanging)]
        for f in faults:
            f.result()
        done.set()
        for f in workers:
            f.result()
    stream_s = time.perf_counter() - started

    assert log.transport_errors == 0
    normal_answers, raised, hung = log.of("normal"), log.of("raise"), log.of("hang")
    assert len(raised) == 20 and len(hung) == 2 and len(normal_answers) > 100
    # With batching, a raising input that shares a batch with a hanging one gets the batch's
    # 504 (the batch is not retried one by one: that would run the hanging input again).
    # CI saw this once; it is the documented behaviour, so it counts with the shared 504s.
    batched_with_a_hang = [a for a in raised if batching and a.status == 504]
    for a in raised:  # a model exception: 500 with the request id, the server goes on
        if a in batched_with_a_hang:
            continue
        assert a.status == 500, a.body
        assert "ValueError" in a.body["message"] and a.body["request_id"] == a.request_id
    for a in hung:  # past the limit: 504 naming the limit and how to raise it
        assert a.status == 504, a.body
        message = a.body["message"]
        assert f"within {TIMEOUT_S:g} s" in message, message
        assert "api.timeout_s" in message and "--timeout" in message, message
        assert TIMEOUT_S - 0.1 <= a.seconds < TIMEOUT_S + 5, a.seconds
    ok = [a for a in normal_answers if a.status == 200]
    shared = [a for a in normal_answers if a.status != 200]
    if batching:
        # Callers batched together with a hanging input share its 504: at most one batch
        # (max_batch_size 8) per hung call; raising inputs are isolated from their batch.
        assert all(a.status == 504 for a in shared), [a.body for a in shared[:3]]
        assert len(shared) + len(batched_with_a_hang) <= 2 * 8
        assert len(batched_with_a_hang) < len(raised), "raising inputs were not isolated"
    else:
        assert not shared, [a.body for a in shared[:3]]
    # Answered while calls hung, and never held up by them: each well inside the limit.
    latencies = sorted(a.seconds for a in ok)
    assert latencies[-1] < TIMEOUT_S, latencies[-5:]
    assert all(a.body["y"] == 2 * a.payload["x"] for a in ok)

    # Saturation: hung calls up to max_hung; then new calls are refused at once, /ready says
    # why, liveness stays up, and it all recovers when the hung calls end.
    with httpx2.Client(base_url=url, timeout=60) as client:
        added = 0
        while client.get("/ready").status_code == 200:
            answer = _send(client, log, "hang", {"x": 999, "hang": HANG_S})
            assert answer is not None and answer.status == 504, answer
            added += 1
            assert added <= max_hung
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["hung_calls"] >= max_hung
        refused = _send(client, log, "normal", {"x": 5})
        assert refused is not None and refused.status == 503, refused
        assert (
            f"{ready.json()['hung_calls']} model calls are still running"
            in (refused.body["message"])
        )
        assert "api.max_hung_calls" in refused.body["message"]
        assert refused.seconds < 1.0  # refused at once, not after a wait
        assert client.get("/health").status_code == 200
        assert client.get("/ping").status_code == 503
        hung_gauge = float(_metric(client.get("/metrics").text, "keel_model_calls_hung"))
        assert hung_gauge >= max_hung
        saturated_at = time.perf_counter()
        while client.get("/ready").status_code != 200:
            assert time.perf_counter() - saturated_at < HANG_S + 30, "never recovered"
            time.sleep(0.2)
        recovered_s = time.perf_counter() - saturated_at
        back = _send(client, log, "normal", {"x": 7})
        assert back is not None and back.status == 200 and back.body["y"] == 14.0

    out = served.stop()
    assert served.proc.returncode in CLEAN_EXIT, out
    assert "ended after" in out  # the hung calls' end is logged
    records = _records()
    for a in log.answers:
        if a.status == 200:
            assert records.get(a.request_id) == "ok", a
        elif a.status in (500, 504):  # a failed call is recorded as failed
            assert records.get(a.request_id) == "error", a
    print(
        f"\n[faults {'batching' if batching else 'single'}] stream {stream_s:.1f} s: "
        f"{len(normal_answers)} normal calls ({len(ok)} answered 200, {len(shared)} shared "
        f"a hung batch), p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; {len(raised)} raising → 500; "
        f"{len(hung)} hung during it → 504 after {min(a.seconds for a in hung):.2f}"
        f"-{max(a.seconds for a in hung):.2f} s; saturated after {added} more hung call(s), "
        f"recovered by itself in {recovered_s:.1f} s; {len(records)} records"
    )


@pytest.mark.parametrize("batching", [False, True], ids=["single", "batching"])
def test_sigterm_under_load_stores_every_answered_call(serve, batching: bool) -> None:
    # The writer stores a batch every 30 s (or per 1,000 records): most records are still
    # queued when SIGTERM comes.
    served = serve(threads=4, max_hung=4, batching=batching, flush_s=30)
    url, proc = served.url, served.proc
    log = Log()
    stop = threading.Event()
    target = 1500  # answers before SIGTERM

    def client_loop(worker: int) -> None:
        with httpx2.Client(base_url=url, timeout=60) as client:
            i = 0
            while not stop.is_set():
                i += 1
                raising = i % 50 == 0
                payload = {"x": -1} if raising else {"x": worker * 10_000 + i}
                if _send(client, log, "raise" if raising else "normal", payload) is None:
                    return  # the server stopped listening

    with ThreadPoolExecutor(9) as pool:
        loops = [pool.submit(client_loop, w) for w in range(8)]
        deadline = time.monotonic() + 120
        while len(log.answers) < target:
            assert time.monotonic() < deadline, f"only {len(log.answers)} answers in 120 s"
            assert proc.poll() is None
            time.sleep(0.05)

        # A call that hangs for two minutes is in flight when SIGTERM comes: the server
        # answers it 504 at its limit and exits without waiting for it.
        def hang() -> None:
            with httpx2.Client(base_url=url, timeout=60) as client:
                _send(client, log, "hang", {"x": 999, "hang": 120})

        hung = pool.submit(hang)
        time.sleep(0.3)
        metrics = httpx2.get(f"{url}/metrics", timeout=30).text
        queued = float(_metric(metrics, "keel_invocation_queue_depth"))
        at_sigterm = len(log.answers)
        proc.send_signal(signal.SIGTERM)
        sent_at = time.monotonic()
        try:
            out = served.wait(60)
        finally:
            stop.set()
        exit_s = time.monotonic() - sent_at
        hung.result()
        for f in loops:
            f.result()

    assert proc.returncode in CLEAN_EXIT, out
    assert exit_s < 30, f"exit took {exit_s:.1f} s"
    assert [a.status for a in log.of("hang")] == [504]  # answered before the exit
    answered_ok = {a.request_id for a in log.answers if a.status == 200}
    answered_failed = {a.request_id for a in log.answers if a.status in (500, 504)}
    assert len(log.answers) > at_sigterm  # answers kept coming after SIGTERM
    assert all(a.status in (200, 500, 504) for a in log.answers), {a.status for a in log.answers}
    records = _records()
    ok_records = {rid for rid, status in records.items() if status == "ok"}
    missing = answered_ok - ok_records
    assert not missing, f"{len(missing)} answered calls have no record"
    assert {rid for rid, s in records.items() if s == "error"} >= answered_failed
    # Records beyond the answers: answered by the server as the connection closed (at most
    # one per client).
    extra = ok_records - answered_ok
    assert len(extra) <= 8
    assert not list(Path.cwd().glob("keel-unstored-invocations-*"))
    print(
        f"\n[sigterm {'batching' if batching else 'single'}] 8 clients; {at_sigterm} answers "
        f"before SIGTERM ({queued:.0f} records queued), {len(log.answers)} in all ({len(answered_ok)} 200, "
        f"{len(answered_failed)} 500/504), {log.transport_errors} refused connections after "
        f"it; {len(ok_records)} ok + {len(records) - len(ok_records)} error records, "
        f"{len(missing)} missing, {len(extra)} extra; exit {exit_s:.1f} s after SIGTERM "
        "with a 120 s call still running"
    )
