"""PostgreSQL stops and comes back under a running `keel server` and `keel serve`.

Each test runs its own throwaway PostgreSQL cluster (the session's shared one stays up for the
other tests), stops it with ``pg_ctl stop -m fast`` while real server processes are serving,
and starts it again. Each prints one line of numbers (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from pg import PostgresServer, PostgresUnavailable

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "s3cret-pw"  # in the store URL; trust authentication ignores it, no answer may show it
RECOVERY_LIMIT_S = 30.0
CLEAN_EXIT = (0, -signal.SIGTERM)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this test alone: it is stopped and started again."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL binaries not found (apt-get install postgresql): {exc.reason}")
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A keel subprocess whose output is read as it comes (a full pipe would stall it)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keel.cli", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"it exited early:\n{self.output}"
            try:
                if httpx2.get(url, timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} never answered 200:\n{self.output}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        return self.output


def _with_password(url: str) -> str:
    return url.replace("postgresql+psycopg://postgres@", f"postgresql://postgres:{PASSWORD}@")


def _poll(check, limit: float = RECOVERY_LIMIT_S) -> float:
    """Seconds until ``check()`` is true (every 0.2 s), failing past ``limit``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"not back within {limit:g} s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_keel_server_answers_503_while_postgres_is_down_and_recovers(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    from tests.keel_server import admin_token

    url = own_postgres.new_database()
    db = url.rsplit("/", 1)[1]
    token = admin_token(url)  # an admin (password test-password) and an API token
    port = _free_port()
    server = Process(
        ["server", "--store", _with_password(url), "--artifacts", str(tmp_path / "artifacts"),
         "--port", str(port), "--log-level", "warning"],
        tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    api = httpx2.Client(base_url=base, timeout=60, headers={"authorization": f"Bearer {token}"})
    browser = httpx2.Client(base_url=base, timeout=60)

    def create(name: str) -> httpx2.Response:
        return api.post("/api/v1/experiments", json={"project": "default", "name": name})

    stop_load = threading.Event()

    try:
        server.wait_until(f"{base}/healthz")
        # Up: a write, a read, a page for a logged-in user, ready.
        assert create("before").status_code == 201
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert csrf is not None
        login = browser.post(
            "/login",
            data={"name": "admin", "password": "test-password", "csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert login.status_code == 303, login.text
        assert browser.get("/").status_code == 200
        assert api.get("/readyz").json() == {"status": "ready"}

        # Four clients read and write all along: some requests are mid-transaction when
        # PostgreSQL shuts down, and none may get anything but an answer or a clear 503.
        load: list[tuple[str, int, str]] = []  # (kind, status, experiment name or message)

        def clients(worker: int) -> None:
            headers = {"authorization": f"Bearer {token}"}
            with httpx2.Client(base_url=base, timeout=60, headers=headers) as http:
                i = 0
                while not stop_load.is_set():
                    i += 1
                    if i % 2:
                        kind, name = "write", f"load-{worker}-{i}"
                        body = {"project": "default", "name": name}
                        answer = http.post("/api/v1/experiments", json=body)
                    else:
                        kind, name = "read", ""
                        answer = http.get("/api/v1/experiments")
                    ok = answer.status_code in (200, 201)
                    load.append((kind, answer.status_code, name if ok else answer.text))
                    time.sleep(0.01)

        load_threads = [threading.Thread(target=clients, args=(w,), daemon=True) for w in range(4)]
        for thread in load_threads:
            thread.start()
        time.sleep(1.0)
        before_halt = len(load)

        own_postgres.halt("fast")
        down_at = time.monotonic()
        location = f"the metadata store (postgresql://127.0.0.1:{own_postgres.port}/{db}) is "
        expected = f"{location}unreachable: connection refused; retrying on every request"
        latencies = []
        for _ in range(5):  # it stays so, each answer quick and the same
            started = time.monotonic()
            read = api.get("/api/v1/experiments")
            latencies.append(time.monotonic() - started)
            assert read.status_code == 503, read.text
            assert read.headers["content-type"].startswith("application/json")
            assert read.json()["message"].startswith(expected), read.json()
            assert read.headers["retry-after"] == "5"
            time.sleep(0.2)
        write = create("during")
        assert write.status_code == 503 and write.json()["message"].startswith(expected)
        page = browser.get("/")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert expected in page.text
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["message"].startswith(expected)
        assert browser.get("/readyz").status_code == 503  # no token needed
        assert browser.get("/healthz").json() == {"status": "ok"}  # liveness stays up
        for answer in (read, write, page, ready):
            assert PASSWORD not in answer.text
        time.sleep(max(0.0, 5.0 - (time.monotonic() - down_at)))  # a 5 s outage under load
        outage_s = time.monotonic() - down_at

        own_postgres.resume()
        back_at = time.monotonic()
        recovered_s = _poll(lambda: api.get("/api/v1/experiments").status_code == 200)
        assert api.get("/readyz").status_code == 200
        assert browser.get("/").status_code == 200  # the same session, logged in still
        assert create("after").status_code == 201
        write_back_s = time.monotonic() - back_at
        time.sleep(1.0)  # the clients go on a while after the recovery
        stop_load.set()
        for thread in load_threads:
            thread.join(60)
        names = {e["name"] for e in api.get("/api/v1/experiments").json()}
        assert {"before", "after"} <= names and "during" not in names
        statuses = [status for _, status, _ in load]
        assert set(statuses) <= {200, 201, 503}, [x for x in load if x[1] not in (200, 201, 503)]
        for _, status, message in load:
            if status == 503:  # whatever broke (refused, or dropped mid-query): the same line
                assert location + "unreachable: " in message and "retrying" in message, message
                assert PASSWORD not in message
        assert all(status in (200, 201) for status in statuses[-20:])  # all well again
        written = {name for kind, status, name in load if kind == "write" and status == 201}
        assert written <= names  # every write answered 201 is there after the outage
        assert server.proc.poll() is None  # never exited
        print(
            f"\n[keel server] PostgreSQL down {outage_s:.1f} s under 4 clients: "
            f"{len(load)} calls ({before_halt} before the stop), "
            f"{statuses.count(503)} answered 503, {len(load) - statuses.count(503)} 200/201, "
            f"0 other; probe reads, write, page, /readyz 503 in at most "
            f"{max(latencies) * 1000:.0f} ms; back: first 200 {recovered_s:.2f} s after "
            f"pg_ctl start returned ({write_back_s:.2f} s to the probe write), "
            f"{len(written)} writes answered 201 all kept, no restart"
        )
    finally:
        stop_load.set()
        api.close()
        browser.close()
        out = server.stop()
    assert server.proc.returncode in CLEAN_EXIT, out
    assert PASSWORD not in out


MODEL_CODE = """
import keel


class Double(keel.Model):
    def train(self, ctx):
        return {"weight": 2.0}

    def predict(self, ctx, fitted, inputs):
        return {"y": inputs["x"] * fitted["weight"]}
"""

CONFIG = """\
project: outage
store: {{url: "{store}", artifacts: "{artifacts}"}}
model: {{name: double, version: "1.0.0", module: double_model}}
api:
  name: double
  record_invokes: true
  record_flush_s: 0.2
  resources:
    - {{name: predict, kind: query}}
"""


def test_keel_serve_keeps_answering_and_stores_the_records_once_postgres_is_back(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    import keel
    from keel.lifecycle.training import train

    url = own_postgres.new_database()
    artifacts = tmp_path / "artifacts"
    (tmp_path / "double_model.py").write_text(MODEL_CODE)
    config = tmp_path / "keel.yml"
    config.write_text(CONFIG.format(store=_with_password(url), artifacts=artifacts))
    train(config)
    client = keel.Client(store=url, artifacts=str(artifacts))
    port = _free_port()
    serve = Process(["-c", str(config), "serve", "--port", str(port)], tmp_path)
    base = f"http://127.0.0.1:{port}"
    answered: list[str] = []

    def predict(count: int, start: int, seconds: float = 0) -> list[float]:
        """``count`` predictions, or as many as fit in ``seconds``."""
        latencies = []
        until = time.monotonic() + seconds
        with httpx2.Client(base_url=base, timeout=60) as http:
            i = start
            while (i < start + count) if not seconds else (time.monotonic() < until):
                i += 1
                started = time.monotonic()
                answer = http.post("/double/v1/predict", json={"x": i})
                latencies.append(time.monotonic() - started)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"y": 2.0 * i}
                answered.append(answer.headers["x-request-id"])
        return latencies

    def stored() -> set[str]:
        return {r.request_id for r in client.find_invocations("double@1", limit=None)}

    try:
        serve.wait_until(f"{base}/ready")
        predict(50, 0)
        _poll(lambda: len(stored()) == 50)

        own_postgres.halt("fast")
        down_at = time.monotonic()
        latencies = predict(0, 50, seconds=6)  # answered while records cannot be stored
        during = len(answered) - 50
        assert httpx2.get(f"{base}/ready", timeout=10).status_code == 200
        assert "invocation records failed" in serve.output
        outage_s = time.monotonic() - down_at

        own_postgres.resume()
        recovered_s = _poll(lambda: stored() == set(answered))  # the queued ones, once back
        assert serve.proc.poll() is None
        failures = serve.output.count("invocation records failed")
        print(
            f"\n[keel serve] PostgreSQL down {outage_s:.1f} s: {during} predictions answered 200 "
            f"(max {max(latencies) * 1000:.0f} ms), {failures} failed writes retried; all "
            f"{len(answered)} records stored {recovered_s:.2f} s after pg_ctl start returned"
        )
    finally:
        out = serve.stop()
    assert serve.proc.returncode in CLEAN_EXIT, out
    assert stored() == set(answered)
    assert not list(tmp_path.glob("keel-unstored-invocations-*"))
    assert PASSWORD not in out
