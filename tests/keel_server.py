"""A real keel platform server for tests: uvicorn in a background thread on 127.0.0.1.

``running_server(settings)`` starts ``create_app(settings)`` on a free port, makes an admin
user with an API token, and stops the server when the ``with`` block ends. The tracking
suite runs its ``client`` fixture against it (``Client("http://…", token=…)``), so the REST
API and the HTTP stores are tested by every tracking test, over real sockets.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.server.settings import ServerSettings

ADMIN = "admin"
STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningServer:
    """A server that answers at ``url``, and the admin token it was given."""

    url: str
    token: str
    store: str


@cache
def _password_hash() -> str:
    """One argon2 hash for the whole session: hashing costs ~50 ms, and these tests use
    tokens, never the password."""
    from keel.server.auth import hash_password

    return hash_password("test-password")


def admin_token(store: str) -> str:
    """Add an admin to the store at ``store`` and return a fresh API token of theirs."""
    from keel.server.auth import Accounts
    from keel.store.accounts import AccountStore

    accounts = Accounts(AccountStore(store))
    accounts.store.add_user(ADMIN, _password_hash(), "admin")
    _token, secret = accounts.create_token(ADMIN, "tests")
    return secret


@contextlib.contextmanager
def running_server(settings: ServerSettings) -> Iterator[RunningServer]:
    """Serve ``create_app(settings)`` until the block ends."""
    import uvicorn

    from keel.server.app import create_app

    token = admin_token(settings.store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; uvicorn serves this socket
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by the waiting thread
            errors.append(exc)

    thread = threading.Thread(target=serve, name=f"keel-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"the test keel server did not start: {errors or 'it exited'}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test keel server did not start in {STARTUP_TIMEOUT_S} s")
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", token, settings.store)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
