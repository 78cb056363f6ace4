"""Accounts of the platform server: argon2 passwords, hashed tokens, roles, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.test_cli import keel

from keel.errors import Conflict, InvalidInput, NotFound
from keel.server.auth import Accounts, Principal
from keel.store.accounts import AccountStore


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(AccountStore(str(tmp_path / "store")))


def test_passwords_are_argon2_and_checked(accounts: Accounts) -> None:
    accounts.add_user("ann", "correct horse", "editor")
    stored = accounts.store.password_hash("ann")
    assert stored is not None and stored.startswith("$argon2id$") and "correct" not in stored
    assert accounts.check_password("ann", "correct horse") == Principal("ann", "editor")
    assert accounts.check_password("ann", "wrong horse!") is None
    assert accounts.check_password("nobody", "correct horse") is None
    with pytest.raises(InvalidInput, match="at least 8"):
        accounts.add_user("bob", "short", "viewer")
    with pytest.raises(InvalidInput, match="unknown role"):
        accounts.add_user("bob", "long enough", "owner")
    with pytest.raises(Conflict, match="already exists"):
        accounts.add_user("ann", "another one", "viewer")


def test_tokens_are_stored_hashed_and_revocable(accounts: Accounts) -> None:
    accounts.add_user("ann", "correct horse", "viewer")
    token, secret = accounts.create_token("ann", "laptop")
    assert token.user == "ann" and token.revoked_at is None
    assert secret.startswith("keel_") and len(secret) > 40
    assert accounts.check_token(secret) == Principal("ann", "viewer")
    assert accounts.check_token(secret + "x") is None
    assert accounts.check_token("not-a-token") is None
    listed = accounts.store.list_tokens("ann")
    assert [t.name for t in listed] == ["laptop"] and secret not in repr(listed)
    with pytest.raises(Conflict):
        accounts.create_token("ann", "laptop")
    accounts.store.revoke_token("ann", "laptop")
    assert accounts.check_token(secret) is None
    with pytest.raises(NotFound):
        accounts.store.revoke_token("ann", "laptop")


def test_roles_are_ordered() -> None:
    viewer, editor, admin = (Principal("x", r) for r in ("viewer", "editor", "admin"))
    assert viewer.may("viewer") and not viewer.may("editor")
    assert editor.may("editor") and not editor.may("admin")
    assert admin.may("viewer") and admin.may("admin")


def test_the_last_admin_stays(accounts: Accounts) -> None:
    accounts.add_user("root", "correct horse", "admin")
    with pytest.raises(Conflict, match="last admin"):
        accounts.store.remove_user("root")
    accounts.add_user("ann", "correct horse", "admin")
    accounts.store.remove_user("root")
    assert [u.name for u in accounts.store.list_users()] == ["ann"]


def test_the_last_admin_keeps_the_role(accounts: Accounts) -> None:
    accounts.add_user("root", "correct horse", "admin")
    with pytest.raises(Conflict, match="last admin"):
        accounts.set_role("root", "editor")
    accounts.add_user("ann", "correct horse", "admin")
    assert accounts.set_role("root", "editor").role == "editor"
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        accounts.set_role("nobody", "viewer")


def test_session_keys_are_random_and_replaced_when_sessions_end(accounts: Accounts) -> None:
    accounts.add_user("ann", "correct horse", "editor")
    accounts.add_user("bob", "correct horse", "editor")
    key = accounts.session_key("ann")
    assert len(key) >= 40 and key != accounts.session_key("bob")
    assert accounts.check_session("ann", key) == Principal("ann", "editor")
    assert accounts.check_session("bob", key) is None  # another user's key
    assert (
        accounts.check_session("ann", None) is None
        and accounts.check_session("nobody", key) is None
    )
    seen = {key}
    for end in (
        lambda: accounts.end_sessions("ann"),
        lambda: accounts.set_password("ann", "battery staple"),
        lambda: accounts.set_role("ann", "viewer"),
    ):
        end()
        assert accounts.check_session("ann", key) is None
        key = accounts.session_key("ann")
        assert key not in seen
        seen.add(key)


def test_a_rehash_at_login_keeps_the_sessions(accounts: Accounts) -> None:
    """argon2's parameters grew: the hash is renewed at the next login, and that login must
    not log the user out of their other browsers."""
    from argon2 import PasswordHasher

    accounts.store.add_user("ann", PasswordHasher(time_cost=1).hash("correct horse"), "viewer")
    key, old_hash = accounts.session_key("ann"), accounts.store.password_hash("ann")
    assert accounts.check_password("ann", "correct horse") == Principal("ann", "viewer")
    assert accounts.store.password_hash("ann") != old_hash  # renewed
    assert accounts.check_session("ann", key) == Principal("ann", "viewer")


def test_users_and_tokens_cli(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store")]
    added = keel(
        *store,
        "users",
        "add",
        "ann",
        "--role",
        "editor",
        "--password-stdin",
        cwd=tmp_path,
        stdin="correct horse\n",
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(keel(*store, "users", "list", "--json", cwd=tmp_path).stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("ann", "editor")]
    created = keel(*store, "tokens", "create", "--user", "ann", "--name", "ci", cwd=tmp_path)
    secret = created.stdout.strip()
    assert created.returncode == 0 and secret.startswith("keel_"), created.stderr
    assert "shown once" in created.stderr
    table = keel(*store, "tokens", "list", cwd=tmp_path).stdout
    assert "ci" in table and secret not in table
    assert keel(*store, "tokens", "revoke", "ci", "--user", "ann", cwd=tmp_path).returncode == 0
    accounts = Accounts(AccountStore(str(tmp_path / "store")))
    assert accounts.check_token(secret) is None
    short = keel(*store, "users", "add", "bob", "--password-stdin", cwd=tmp_path, stdin="x\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    gone = keel(*store, "users", "remove", "nobody", "--yes", cwd=tmp_path)
    assert gone.returncode == 1 and "no user named 'nobody'" in gone.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_beyond_loopback_needs_an_admin(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "store")]
    refused = keel(*store, "server", "--host", "0.0.0.0", "--port", str(_free_port()), cwd=tmp_path)
    assert refused.returncode == 1
    assert "no admin user" in refused.stderr and "keel users add" in refused.stderr


@pytest.mark.slow
def test_server_on_loopback_makes_a_first_admin_once(tmp_path: Path) -> None:
    """Also on a platform that sets WEB_CONCURRENCY (Heroku and others): uvicorn read it as
    a worker count, which it refuses for an app object, and the server exited at once."""
    import httpx2 as httpx

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keel.cli",
            "--store",
            str(tmp_path / "store"),
            "server",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={**os.environ, "WEB_CONCURRENCY": "4"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "created the first user: admin / " in line
        password = line.split("admin / ", 1)[1].split()[0]
        deadline, answered = time.monotonic() + 30, False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).is_success
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answered, f"the server did not answer (exit code {proc.poll()})"
        accounts = Accounts(AccountStore(str(tmp_path / "store")))
        assert accounts.check_password("admin", password) == Principal("admin", "admin")
    finally:
        proc.terminate()
        proc.wait(10)
