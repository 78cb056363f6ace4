"""Slow clients end: a request head or body that stalls is timed out, and a crowd of them
(slowloris) does not keep anyone else out.

A real ``keel server`` process on loopback, started the way people start it, with
keel.yml's ``server: {header_timeout_s: 1, body_timeout_s: 1}``; the clients are raw
sockets, so each test controls exactly which bytes arrive when. Before the server had its
own HTTP protocol (:mod:`keel.server.protocol`), uvicorn waited for ever: every test here
timed out. ``keel serve`` (the model server) gets the same protocol with its default
deadlines. The last two tests run :class:`~keel.server.protocol.SlowClientTimeouts` under
a uvicorn in a thread with a tiny ASGI app that records what it receives, for the two
promises a client cannot see: the app is told the client is gone, and a server that is
slow to read never blames the client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.serving.conftest import trained  # noqa: F401 (a fixture: a project with a model)

pytestmark = pytest.mark.slow

TIMEOUT_S = 1.0  # both server.header_timeout_s and server.body_timeout_s in these tests
# how long a test waits for the server to end a stalled connection: the timeout plus a
# generous margin for a loaded machine (a server without timeouts never ends it)
ENDS_WITHIN_S = 8.0
# the keel server's file descriptors: a few hundred held sockets are then enough to show
# what thousands do to a server with the usual limit (1024 or more)
SERVER_FILES = 256
KEEL = [sys.executable, "-m", "keel.cli"]


@dataclass
class Server:
    host: str
    port: int
    token: str
    log: Path

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=ENDS_WITHIN_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _limit_files() -> None:  # runs in the server's process before it starts
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FILES, hard))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from keel.server.auth import Accounts
    from keel.store.accounts import AccountStore

    root = tmp_path_factory.mktemp("slow-clients")
    store = root / "store"
    (root / "keel.yml").write_text(
        f"server: {{header_timeout_s: {TIMEOUT_S}, body_timeout_s: {TIMEOUT_S}}}\n"
    )
    accounts = Accounts(AccountStore(str(store)))
    accounts.add_user("ann", "a long and unguessable passphrase 7", "admin")
    _, token = accounts.create_token("ann", "slow-clients")
    port = _free_port()
    log_path = root / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*KEEL, "--store", str(store), "server", "--port", str(port)],
            cwd=root,  # its keel.yml sets the timeouts
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_files,
            start_new_session=True,
        )
    try:
        _wait_ready("127.0.0.1", port, proc, log_path)
        yield Server("127.0.0.1", port, token, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"keel server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if _get(host, port, "/healthz", timeout=2)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"keel server not ready: {log.read_text()[-2000:]}")


def _get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def _read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed
    (seconds from now). Fails if it is still open after ``within`` seconds."""
    start = time.monotonic()
    received = b""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept a stalled connection open for {within} s: {received!r}")
    except ConnectionResetError:
        pass  # closed with unread bytes of ours still in its buffer: closed all the same
    return received, time.monotonic() - start


def test_half_sent_headers_are_answered_408_and_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */")
        received, took = _read_until_closed(sock, ENDS_WITHIN_S)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"server.header_timeout_s" in received  # the refusal names its setting
    assert took >= TIMEOUT_S * 0.9  # not before its time


def test_headers_trickled_a_byte_at_a_time_still_end(server: Server) -> None:
    """Slowloris proper: a byte every 0.2 s keeps a connection busy but never completes
    the head; the deadline counts from the connection, not from the last byte."""
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200
    start = time.monotonic()
    with server.connect() as sock:
        with contextlib.suppress(OSError):  # the server closes while we still send
            for byte in head:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - start > ENDS_WITHIN_S:
                    break
        sock.settimeout(1)
        with contextlib.suppress(OSError):
            received = sock.recv(65536)
            assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received
    assert time.monotonic() - start < ENDS_WITHIN_S, "a trickled request head was never cut"


def test_a_huge_request_head_is_answered_431_and_closed(server: Server) -> None:
    """httptools buffers a header however long it is: the protocol stops it at 64 KB."""
    with server.connect() as sock:
        with contextlib.suppress(OSError):  # the server closes while we still send
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(100):  # 10 MB, sent fast: the head clock alone would allow it
                sock.sendall(b"a" * 100_000)
        received, took = _read_until_closed(sock, ENDS_WITHIN_S)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert took < TIMEOUT_S  # refused for its size, not its slowness
    status, _ = _get(server.host, server.port, "/healthz", timeout=5)
    assert status == 200  # large but normal heads still pass: the server is fine


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with server.connect() as sock:
        received, _ = _read_until_closed(sock, ENDS_WITHIN_S)
    assert received == b""  # nothing was asked: closed without an answer


def test_a_body_that_stalls_is_answered_408_and_closed(server: Server) -> None:
    body = json.dumps({"name": "never-created", "project": "default"}).encode()
    head = (
        "POST /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    with server.connect() as sock:
        sock.sendall(head.encode() + body[:10])
        received, took = _read_until_closed(sock, ENDS_WITHIN_S)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b"server.body_timeout_s" in received
    assert took >= TIMEOUT_S * 0.9
    assert _get(server.host, server.port, "/healthz", timeout=5)[0] == 200


def _slow_but_steady_post(server: Server, name: str, pieces: int, pause: float) -> bytes:
    body = json.dumps({"name": name, "project": "default"}).encode()
    head = (
        "POST /api/v1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    step = -(-len(body) // pieces)
    with server.connect() as sock:
        sock.sendall(head)
        for i in range(0, len(body), step):
            time.sleep(pause)
            sock.sendall(body[i : i + step])
        received, _ = _read_until_closed(sock, 30)
    return received


def test_a_slow_but_steady_body_is_served(server: Server) -> None:
    """Pauses shorter than body_timeout_s are fine however long the whole body takes:
    here 3 s for a body under a 1 s limit."""
    received = _slow_but_steady_post(server, "steady-body", pieces=6, pause=TIMEOUT_S / 2)
    assert received.startswith(b"HTTP/1.1 201 "), received
    assert b'"steady-body"' in received


def test_keep_alive_requests_each_get_their_own_deadline(server: Server) -> None:
    """The head clock restarts when a response ends: a client that sends a request every
    half a timeout on one connection is served for several timeouts."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=ENDS_WITHIN_S)
    try:
        conn.connect()
        first = conn.sock
        for _ in range(5):
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            assert answer.status == 200
            answer.read()
            time.sleep(TIMEOUT_S / 2)
        assert conn.sock is first  # the same connection throughout
    finally:
        conn.close()


def test_a_crowd_of_slow_clients_does_not_keep_others_out(server: Server) -> None:
    """300 connections that each send part of a head and then a byte every half second,
    against a server with 256 file descriptors: without a deadline they hold every
    descriptor for ever and /healthz is never answered; with it they are closed within a
    timeout or two and /healthz answers."""
    attackers: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.settimeout(5)
            with contextlib.suppress(OSError):  # past the server's descriptors: refused
                sock.connect((server.host, server.port))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            attackers.append(sock)
        stop = threading.Event()
        trickle = threading.Thread(target=_trickle, args=(attackers, stop), daemon=True)
        trickle.start()
        try:
            start = time.monotonic()
            answered = None
            while time.monotonic() - start < 15 and answered is None:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    answered = _get(server.host, server.port, "/healthz", timeout=1)
            assert answered is not None and answered[0] == 200, (
                "/healthz never answered while 300 slow clients were connected"
            )
            assert time.monotonic() - start < 4 * TIMEOUT_S + ENDS_WITHIN_S
        finally:
            stop.set()
            trickle.join()
    finally:
        for sock in attackers:
            sock.close()


def _trickle(attackers: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for sock in attackers:
            with contextlib.suppress(OSError):
                sock.send(b"X")


# --- keel serve: the same protocol, its default deadlines ------------------------------------


def test_keel_serve_ends_a_half_sent_request_too(trained: Path) -> None:  # noqa: F811
    """The model server (two worker processes: the protocol reaches both) closes a
    half-sent head after the default 10 s, and its answers are never sniffed or framed."""
    from tests.serving.conftest import start_server
    from tests.serving.test_server import _stop, _wait_ready

    from keel.server.protocol import HEADER_TIMEOUT_S

    port = _free_port()
    proc = start_server(trained, port, 2)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        health = conn.getresponse()
        assert health.status == 200
        assert health.getheader("x-content-type-options") == "nosniff"
        assert health.getheader("x-frame-options") == "DENY"
        conn.close()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
            received, took = _read_until_closed(sock, HEADER_TIMEOUT_S + ENDS_WITHIN_S)
    finally:
        _stop(proc)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert took >= HEADER_TIMEOUT_S * 0.9


# --- the protocol under uvicorn, with an app that records what it receives ------------------


@dataclass
class Recorder:
    """An ASGI app that reads the whole body (after ``delay_s``), answers how much it got,
    and keeps the messages ``receive()`` returned."""

    delay_s: float = 0.0
    messages: list[dict[str, Any]] | None = None
    done: threading.Event | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import asyncio

        if scope["type"] != "http":
            return
        self.messages, self.done = [], threading.Event()
        await asyncio.sleep(self.delay_s)
        size = 0
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "http.disconnect":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        answer = str(size).encode()
        length = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": answer})
        self.done.set()


@contextlib.contextmanager
def _uvicorn(app: Recorder) -> Iterator[int]:
    import uvicorn

    from keel.server.protocol import protocol_class

    port = _free_port()
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        http=protocol_class(TIMEOUT_S, TIMEOUT_S),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_app_sees_a_disconnect_when_a_body_stalls() -> None:
    app = Recorder()
    with _uvicorn(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        received, _ = _read_until_closed(sock, ENDS_WITHIN_S)
        assert app.done is not None and app.done.wait(5)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert app.messages is not None
    assert app.messages[-1] == {"type": "http.disconnect"}
    assert b"200" not in received  # the app's own answer, after the disconnect, went nowhere


def test_a_server_slow_to_read_a_body_does_not_blame_the_client() -> None:
    """A 1 MB body sent at once to an app that starts reading only after three timeouts:
    uvicorn stops reading meanwhile (flow control), so the client is not the slow one."""
    app = Recorder(delay_s=3 * TIMEOUT_S)
    body = b"x" * 1024 * 1024
    with _uvicorn(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        received, _ = _read_until_closed(sock, 30)
    assert received.startswith(b"HTTP/1.1 200 "), received
    assert received.endswith(str(len(body)).encode())
