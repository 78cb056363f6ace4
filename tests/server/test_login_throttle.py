"""Password guessing is slowed (issue 19, item 6): failed logins counted per user name and
per client address in the metadata store, shared by every replica; after
``server.login_free_attempts`` failures each attempt waits twice as long as the one before,
up to ``server.login_max_delay_s``, and an attempt made too soon is answered 429 with
``Retry-After`` without its password being checked. Also: common passwords are refused.

The servers' clock is the test's own (``LoginThrottle(clock=…)`` set as
``app.state.login_throttle``), so waits pass without the test sleeping.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.test_cli import keel

from keel.errors import InvalidInput
from keel.server.app import create_app
from keel.server.auth import Accounts
from keel.server.settings import ServerSettings
from keel.store.accounts import AccountStore

PASSWORD = "correct-horse"
WRONG = "wrong-horse"
EPOCH = 1_900_000_000.0


@dataclass
class Clock:
    """Wall-clock seconds that move only when told."""

    now: float = EPOCH

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Servers:
    """Two replicas over one store, with one clock."""

    a: FastAPI
    b: FastAPI
    clock: Clock
    accounts: Accounts
    settings: ServerSettings
    apps: list[FastAPI] = field(default_factory=list)


def with_clock(app: FastAPI, clock: Clock) -> FastAPI:
    from keel.server.throttle import LoginThrottle

    settings = app.state.settings
    app.state.login_throttle = LoginThrottle(
        app.state.accounts.store,
        settings.login_free_attempts,
        settings.login_max_delay_s,
        clock=clock,
    )
    return app


@pytest.fixture
def servers(store_url: str, tmp_path: Path) -> Iterator[Servers]:
    settings = ServerSettings(store=store_url, artifacts=str(tmp_path / "artifacts"))
    clock = Clock()
    a, b = (with_clock(create_app(settings), clock) for _ in range(2))
    accounts: Accounts = a.state.accounts
    accounts.add_user("ann", PASSWORD, "editor")
    accounts.add_user("bob", PASSWORD, "viewer")
    yield Servers(a, b, clock, accounts, settings)
    a.state.client.close()
    b.state.client.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def ui_login(app: FastAPI, name: str, password: str, client: str = "10.0.0.1") -> Any:
    """One login through the UI's form, from ``client``; the answer."""
    with TestClient(app, client=(client, 40000)) as tc:
        token = csrf_of(tc.get("/login").text)
        return tc.post(
            "/login",
            data={"name": name, "password": password, "csrf_token": token},
            follow_redirects=False,
        )


def basic(name: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_wrong_passwords_at_login_are_slowed_on_every_replica(servers: Servers) -> None:
    """20 wrong passwords in a row, alternating between the replicas: 5 are checked (401),
    the rest are refused with 429 and Retry-After, and so is the right password while the
    wait lasts. Once it is over, the right password works and clears the count."""
    statuses, answers = [], []
    for attempt in range(20):
        answer = ui_login(servers.a if attempt % 2 else servers.b, "ann", WRONG)
        statuses.append(answer.status_code)
        answers.append(answer)
    assert statuses == [401] * 5 + [429] * 15
    refused = answers[-1]
    assert refused.headers["retry-after"] == "1"
    message = re.search(r'role="alert">([^<]*)<', refused.text)
    assert message is not None
    assert message.group(1) == (
        "too many failed logins for &#39;ann&#39;; try again in 1 s (after "
        "server.login_free_attempts=5 failures each wait doubles, up to "
        "server.login_max_delay_s=900 s)"
    )
    assert 'name="password"' in refused.text

    right_too_soon = ui_login(servers.a, "ann", PASSWORD)
    assert right_too_soon.status_code == 429

    servers.clock.advance(1)
    assert ui_login(servers.b, "ann", PASSWORD).status_code == 303
    for _ in range(5):  # the count started again: five more mistakes are free
        assert ui_login(servers.a, "ann", WRONG).status_code == 401


def test_each_wait_doubles_up_to_the_longest(store_url: str, tmp_path: Path) -> None:
    settings = ServerSettings(store=store_url, login_free_attempts=2, login_max_delay_s=5)
    clock = Clock()
    app = with_clock(create_app(settings), clock)
    app.state.accounts.add_user("ann", PASSWORD, "viewer")
    assert [ui_login(app, "ann", WRONG).status_code for _ in range(2)] == [401, 401]
    waits = []
    for _ in range(5):
        refused = ui_login(app, "ann", WRONG)
        assert refused.status_code == 429
        assert "server.login_free_attempts=2" in refused.text
        assert "server.login_max_delay_s=5 s" in refused.text
        wait = int(refused.headers["retry-after"])
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert ui_login(app, "ann", PASSWORD).status_code == 429  # not yet, even if right
        clock.advance(0.5)
        assert ui_login(app, "ann", WRONG).status_code == 401  # checked, and counted
    assert waits == [1, 2, 4, 5, 5]
    clock.advance(5)
    assert ui_login(app, "ann", PASSWORD).status_code == 303
    app.state.client.close()


def test_a_name_is_slowed_from_every_address_and_an_address_for_every_name(
    servers: Servers,
) -> None:
    for _ in range(5):
        ui_login(servers.a, "ann", WRONG, client="10.0.0.1")
    elsewhere = ui_login(servers.b, "ann", PASSWORD, client="10.0.0.2")
    assert elsewhere.status_code == 429
    assert "for &#39;ann&#39;" in elsewhere.text
    # bob, from the address that failed five times: slowed for the address
    from_there = ui_login(servers.a, "bob", PASSWORD, client="10.0.0.1")
    assert from_there.status_code == 429
    assert "from this address" in from_there.text
    # bob from another address is not
    assert ui_login(servers.a, "bob", PASSWORD, client="10.0.0.3").status_code == 303


def test_a_name_nobody_has_is_answered_like_a_real_one(servers: Servers) -> None:
    def statuses(name: str, client: str) -> list[tuple[int, str | None]]:
        found = []
        for _ in range(8):
            answer = ui_login(servers.a, name, WRONG, client=client)
            found.append((answer.status_code, answer.headers.get("retry-after")))
        return found

    assert statuses("ann", "10.0.1.1") == statuses("nobody", "10.0.1.2")


def test_mlflow_basic_auth_is_slowed_too(servers: Servers) -> None:
    """A GET (checked in the route) and a POST (checked before its body is read) alike;
    MLflow's client retries a 429 after Retry-After by itself."""
    search = "/api/2.0/mlflow/experiments/search"
    with TestClient(servers.a, client=("10.0.2.1", 40000)) as tc:
        for _ in range(5):
            wrong = tc.get(search, params={"max_results": 1}, headers=basic("ann", WRONG))
            assert wrong.status_code == 401, wrong.text
        refused = tc.post(search, json={"max_results": 1}, headers=basic("ann", PASSWORD))
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert refused.json()["message"].startswith("too many failed logins for 'ann'")
        again = tc.get(search, params={"max_results": 1}, headers=basic("ann", PASSWORD))
        assert again.status_code == 429 and again.headers["retry-after"] == "1"
    with TestClient(servers.b, client=("10.0.2.2", 40000)) as tc:  # the other replica
        assert tc.get(search, headers=basic("ann", PASSWORD)).status_code == 429
        servers.clock.advance(1)
        assert tc.get(search, headers=basic("ann", PASSWORD)).status_code == 200


def test_attempts_at_once_are_all_counted(servers: Servers) -> None:
    """20 wrong passwords sent at the same moment from 20 threads (as 20 replicas would
    check them): only the free ones get their password checked."""
    from keel.server.throttle import LoginThrottle, TooManyLogins

    throttle = LoginThrottle(AccountStore(servers.settings.store), 5, 900, clock=servers.clock)
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def attempt() -> None:
        start.wait()
        try:
            found = throttle.check_password(servers.accounts, "ann", WRONG, "10.0.3.1")
            outcomes.append("checked" if found is None else "in")
        except TooManyLogins:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["checked"] * 5 + ["refused"] * 15


def test_old_failures_are_forgotten_and_their_rows_deleted(servers: Servers) -> None:
    from keel.server.throttle import FORGET_AFTER_S, failure_key

    for _ in range(5):
        ui_login(servers.a, "nobody", WRONG)
    store = servers.accounts.store
    assert store.failed_logins(failure_key("user", "nobody")).failures == 5  # type: ignore[union-attr]
    servers.clock.advance(FORGET_AFTER_S + 1)
    assert ui_login(servers.a, "ann", WRONG, client="10.0.4.1").status_code == 401
    assert store.failed_logins(failure_key("user", "nobody")) is None  # pruned
    assert store.failed_logins(failure_key("address", "10.0.0.1")) is None


# --- common passwords -------------------------------------------------------------------------


def test_common_passwords_and_the_user_name_are_refused(tmp_path: Path) -> None:
    accounts = Accounts(AccountStore(str(tmp_path / "store")))
    for password in ("password123", "Password123", " qwertyuiop "):
        with pytest.raises(InvalidInput, match="one of the 20,000 most common; choose another"):
            accounts.add_user("ann", password)
    with pytest.raises(InvalidInput, match="the user name"):
        accounts.add_user("annabelle", "AnnaBelle")
    accounts.add_user("ann", PASSWORD)
    with pytest.raises(InvalidInput, match="most common"):
        accounts.set_password("ann", "iloveyou")
    assert accounts.check_password("ann", PASSWORD) is not None  # unchanged


def test_keel_users_refuses_a_common_password_in_one_line(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store")]
    added = keel(
        *store, "users", "add", "ann", "--password-stdin", cwd=tmp_path, stdin="password123\n"
    )
    assert added.returncode == 1
    assert added.stderr.strip().splitlines() == [
        "error: this password is one of the 20,000 most common; choose another"
    ]
    ok = keel(*store, "users", "add", "ann", "--password-stdin", cwd=tmp_path, stdin=PASSWORD)
    assert ok.returncode == 0, ok.stderr
    passwd = keel(
        *store, "users", "passwd", "ann", "--password-stdin", cwd=tmp_path, stdin="letmein1\n"
    )
    assert passwd.returncode == 1 and "most common" in passwd.stderr


def test_the_rest_api_refuses_a_common_password(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=str(tmp_path / "store")))
    accounts: Accounts = app.state.accounts
    accounts.add_user("root", PASSWORD, "admin")
    _token, secret = accounts.create_token("root", "tests")
    auth = {"Authorization": f"Bearer {secret}"}
    with TestClient(app) as tc:
        added = tc.post("/api/v1/users", json={"name": "ann", "password": "12345678"}, headers=auth)
        assert added.status_code == 422
        assert added.json()["message"] == (
            "this password is one of the 20,000 most common; choose another"
        )
        changed = tc.put(
            "/api/v1/users/root/password", json={"password": "abc123456"}, headers=auth
        )
        assert changed.status_code == 422 and "most common" in changed.json()["message"]
    app.state.client.close()
