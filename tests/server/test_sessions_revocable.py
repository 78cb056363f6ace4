"""Sessions that can be ended (issue 19, item 2): a copied session cookie stops working once
its user logs out, gets a new password or a new role, or is removed, even when a user of the
same name is made again, on every replica of the server.

Two "replicas" are two apps over one metadata store (SQLite and PostgreSQL), sharing the
secret key as a deployment behind a load balancer does. The copy of a cookie is what a thief
holds: the cookie's value, sent from another client.
"""

from __future__ import annotations

import json
import re
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.test_cli import keel

from keel.server.app import SESSION_COOKIE, create_app
from keel.server.auth import Accounts
from keel.server.settings import ServerSettings
from keel.store.accounts import AccountStore
from keel.store.engine import (
    _alembic_config,
    _create_engine,
    dispose_engines,
    head_revision,
    normalize_url,
)

PASSWORD = "correct-horse"
NEW_PASSWORD = "battery-staple"


@dataclass
class Replicas:
    """Two servers over one store, and an admin token for the REST API."""

    a: FastAPI
    b: FastAPI
    accounts: Accounts
    admin_token: str
    store: str


@pytest.fixture
def replicas(store_url: str, tmp_path: Path) -> Iterator[Replicas]:
    settings = ServerSettings(store=store_url, artifacts=str(tmp_path / "artifacts"))
    a, b = create_app(settings), create_app(settings)
    accounts: Accounts = a.state.accounts
    accounts.add_user("ann", PASSWORD, "editor")
    accounts.add_user("root", "root-password-1", "admin")
    _token, secret = accounts.create_token("root", "tests")
    yield Replicas(a, b, accounts, secret, store_url)
    a.state.client.close()
    b.state.client.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def log_in(app: FastAPI, name: str = "ann", password: str = PASSWORD) -> str:
    """Log in through the UI's form; the session cookie's value."""
    with TestClient(app) as tc:
        token = csrf_of(tc.get("/login").text)
        answer = tc.post(
            "/login",
            data={"name": name, "password": password, "csrf_token": token},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        cookie = tc.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


def who(app: FastAPI, cookie: str) -> str | None:
    """Whom a copy of ``cookie`` is taken for on ``app`` (None: refused, 401)."""
    with TestClient(app, cookies={SESSION_COOKIE: cookie}) as tc:
        answer = tc.get("/api/v1/me")
    if answer.status_code == 401:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()["name"]


def ui_page(app: FastAPI, cookie: str) -> str:
    """Where a browser holding ``cookie`` lands on the UI's start page."""
    with TestClient(app, cookies={SESSION_COOKIE: cookie}) as tc:
        answer = tc.get("/", follow_redirects=False)
    return answer.headers.get("location", "") if answer.status_code == 303 else "page"


def test_logout_ends_every_copy_of_the_session_on_every_replica(replicas: Replicas) -> None:
    cookie = log_in(replicas.a)
    other_browser = log_in(replicas.b)
    assert who(replicas.a, cookie) == "ann" and who(replicas.b, cookie) == "ann"
    assert ui_page(replicas.b, cookie) == "page"

    with TestClient(replicas.a, cookies={SESSION_COOKIE: cookie}) as tc:
        home = tc.get("/")
        out = tc.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"

    assert who(replicas.b, cookie) is None  # the copy, on the other replica
    assert who(replicas.a, cookie) is None
    assert ui_page(replicas.b, cookie) == "/login?next=/"
    assert who(replicas.b, other_browser) is None  # logging out is logging out everywhere
    assert who(replicas.b, log_in(replicas.a)) == "ann"  # and a new login works at once


def test_a_new_password_ends_every_session(replicas: Replicas) -> None:
    cookie = log_in(replicas.a)
    replicas.accounts.set_password("ann", NEW_PASSWORD)  # what `keel users passwd` calls
    assert who(replicas.b, cookie) is None

    cookie = log_in(replicas.b, password=NEW_PASSWORD)
    with TestClient(replicas.a) as tc:
        changed = tc.put(
            "/api/v1/users/ann/password",
            json={"password": "a-third-password"},
            headers={"Authorization": f"Bearer {replicas.admin_token}"},
        )
    assert changed.status_code == 204, changed.text
    assert who(replicas.a, cookie) is None
    assert who(replicas.a, log_in(replicas.b, password="a-third-password")) == "ann"


def test_keel_users_passwd_ends_every_session(replicas: Replicas, tmp_path: Path) -> None:
    cookie = log_in(replicas.a)
    done = keel(
        "--store",
        replicas.store,
        "users",
        "passwd",
        "ann",
        "--password-stdin",
        cwd=tmp_path,
        stdin=NEW_PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert who(replicas.b, cookie) is None


def test_a_new_role_ends_every_session(replicas: Replicas) -> None:
    cookie = log_in(replicas.a)
    replicas.accounts.set_role("ann", "viewer")  # what `keel users set-role` calls
    assert who(replicas.b, cookie) is None

    cookie = log_in(replicas.a)
    with TestClient(replicas.b) as tc:
        changed = tc.patch(
            "/api/v1/users/ann",
            json={"role": "editor"},
            headers={"Authorization": f"Bearer {replicas.admin_token}"},
        )
    assert changed.status_code == 200 and changed.json()["role"] == "editor", changed.text
    assert who(replicas.a, cookie) is None


def test_a_removed_user_made_again_does_not_inherit_old_sessions(replicas: Replicas) -> None:
    cookie = log_in(replicas.a)
    with TestClient(replicas.b) as tc:
        removed = tc.delete(
            "/api/v1/users/ann", headers={"Authorization": f"Bearer {replicas.admin_token}"}
        )
    assert removed.status_code == 204, removed.text
    assert who(replicas.a, cookie) is None
    replicas.accounts.add_user("ann", PASSWORD, "admin")  # same name, same password
    assert who(replicas.a, cookie) is None and who(replicas.b, cookie) is None
    assert who(replicas.b, log_in(replicas.a)) == "ann"


def test_a_cookie_without_the_session_key_is_refused(replicas: Replicas) -> None:
    """A cookie as keel made them before sessions could be ended (the user's name only),
    signed with the server's own key: it no longer counts."""
    from itsdangerous import TimestampSigner

    secret = replicas.a.state.settings.secret_key
    payload = b64encode(json.dumps({"user": "ann"}).encode())
    old_cookie = TimestampSigner(str(secret)).sign(payload).decode()
    assert who(replicas.a, old_cookie) is None
    assert ui_page(replicas.a, old_cookie) == "/login?next=/"


def test_the_session_cookie_of_a_login_over_https_is_secure(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=str(tmp_path / "store")))
    app.state.accounts.add_user("ann", PASSWORD, "viewer")
    with TestClient(app, base_url="https://testserver") as tc:
        token = csrf_of(tc.get("/login").text)
        answer = tc.post(
            "/login",
            data={"name": "ann", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "; secure" in cookie
    app.state.client.close()


def test_the_migration_gives_every_user_a_session_key_and_keeps_tokens(store_url: str) -> None:
    """A store made by keel before sessions could be ended (schema 0002), with a user and a
    token, upgraded: the user gets a random session key, the token still works (SQLite's
    table copy would have deleted it through ON DELETE CASCADE), failures can be counted."""
    from alembic import command

    from keel.server.auth import hash_password, token_hash
    from keel.store.engine import upgrade

    engine = _create_engine(normalize_url(store_url))
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002")
        for name in ("ann", "bob"):
            conn.execute(
                text(
                    "INSERT INTO users (id, name, password_hash, role, created_at) "
                    "VALUES (:id, :name, :hash, 'editor', 0)"
                ),
                {"id": f"id-{name}", "name": name, "hash": hash_password(PASSWORD)},
            )
        conn.execute(
            text(
                "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) "
                "VALUES ('t1', 'id-ann', 'ci', :hash, 0)"
            ),
            {"hash": token_hash("keel_secret")},
        )
    before, after = upgrade(engine)
    assert before == "0002" and after == head_revision()
    engine.dispose()
    dispose_engines()

    accounts = Accounts(AccountStore(store_url))
    keys = [accounts.store.user_and_session_key(name) for name in ("ann", "bob")]
    assert all(found is not None and len(found[1]) >= 40 for found in keys)
    assert keys[0][1] != keys[1][1]  # type: ignore[index]
    assert accounts.check_token("keel_secret") is not None
    assert accounts.check_session("ann", keys[0][1]) is not None  # type: ignore[index]
    assert accounts.check_session("ann", "") is None
    assert accounts.store.failed_logins("nothing") is None
    dispose_engines()


def test_keel_yml_may_name_another_variable_for_the_session_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``secret_key_var: NAME`` is read like every ``*_var`` key: the key comes from NAME
    (it used to be refused as an unknown key ``secret_key``)."""
    from keel.server.settings import ServerSettings

    (tmp_path / "keel.yml").write_text("store: .keel\nserver:\n  secret_key_var: TEAM_KEY\n")
    monkeypatch.setenv("TEAM_KEY", "k" * 40)
    monkeypatch.chdir(tmp_path)
    assert ServerSettings.resolve().secret_key == "k" * 40
