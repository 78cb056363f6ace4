"""Accounts of the platform server: users, their roles and their API tokens, the session key
of each user and the counts of failed logins.

This module stores and finds; it never sees a password or a token in clear. The server's
:mod:`keel.server.auth` hashes passwords (argon2id) and tokens (sha256) before they get here.
The tables live in the metadata store's database, so a team's one PostgreSQL holds them too,
and every replica of the server sees the same session keys and the same failure counts.

A user's session key is random (never a counter, which would start again when a removed
user is made anew): it is made with the user and replaced whenever their sessions must end
(a logout, a new password, a new role). The counts of failed logins are written atomically
(an UPSERT) so that replicas answering the same guesser at once count every guess.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, case, delete, func, select, update

from keel.entities import ROLES, ApiToken, User
from keel.errors import Conflict, InvalidInput, NotFound
from keel.store import schema as t
from keel.store.engine import get_engine, read_connection, write_transaction
from keel.store.sql import new_id, now_ms


def new_session_key() -> str:
    """A fresh random session key (256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class FailedLogins:
    """The failed logins counted under one key (a user name or a client address)."""

    failures: int
    last_failure_at: int  # ms since the epoch


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InvalidInput("a user name is 1 to 64 characters")
    if any(c.isspace() or c in "/:@" for c in name):
        raise InvalidInput(f"user name {name!r} may not contain spaces, '/', ':' or '@'")
    return name


class AccountStore:
    """Users and API tokens in the database of the metadata store at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine(self.url)  # migrated on first use
        return self._engine

    # --- users ----------------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, role: str) -> User:
        check_user_name(name)
        check_role(role)
        row = {
            "id": new_id(),
            "name": name,
            "password_hash": password_hash,
            "role": role,
            "created_at": now_ms(),
            "session_key": new_session_key(),
        }
        with write_transaction(self.engine) as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            conn.execute(t.users.insert().values(**row))
        return User(row["id"], name, role, row["created_at"])

    def get_user(self, name: str) -> User:
        found = self._user_row(name)
        return User(found.id, found.name, found.role, found.created_at)

    def user_and_session_key(self, name: str) -> tuple[User, str] | None:
        """A user and their current session key in one read, or None when there is none."""
        with read_connection(self.engine) as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            return None
        return User(row.id, row.name, row.role, row.created_at), row.session_key

    def end_sessions(self, name: str) -> None:
        """Replace a user's session key: every session cookie made before stops counting."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(t.users).where(t.users.c.name == name).values(session_key=new_session_key())
            )
            if done.rowcount == 0:
                raise NotFound(f"no user named {name!r}")

    def password_hash(self, name: str) -> str | None:
        """The stored hash of a user's password, or None when there is no such user."""
        with read_connection(self.engine) as conn:
            return conn.execute(
                select(t.users.c.password_hash).where(t.users.c.name == name)
            ).scalar()

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """A new password: the user's sessions end (their session key is replaced)."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(t.users)
                .where(t.users.c.name == name)
                .values(password_hash=password_hash, session_key=new_session_key())
            )
            if done.rowcount == 0:
                raise NotFound(f"no user named {name!r}")

    def rehash_password(self, name: str, old_hash: str, new_hash: str) -> None:
        """The same password hashed with newer parameters (sessions go on); nothing happens
        if the password was changed since ``old_hash`` was read."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(t.users)
                .where(t.users.c.name == name, t.users.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    def set_role(self, name: str, role: str) -> User:
        """A new role (the user's sessions end); the last admin stays an admin."""
        check_role(role)
        with write_transaction(self.engine) as conn:
            if role != "admin":
                row = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).first()
                if row is not None and row.role == "admin" and _admins(conn) == 1:
                    raise Conflict(
                        f"{name!r} is the last admin: make another admin before changing them"
                    )
            done = conn.execute(
                update(t.users)
                .where(t.users.c.name == name)
                .values(role=role, session_key=new_session_key())
            )
            if done.rowcount == 0:
                raise NotFound(f"no user named {name!r}")
        return self.get_user(name)

    def list_users(self) -> list[User]:
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.name)).all()
        return [User(r.id, r.name, r.role, r.created_at) for r in rows]

    def count_admins(self) -> int:
        with read_connection(self.engine) as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(t.users).where(t.users.c.role == "admin")
                ).scalar()
                or 0
            )

    def remove_user(self, name: str) -> None:
        """Remove a user and their tokens (the last admin cannot be removed)."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
            if row is None:
                raise NotFound(f"no user named {name!r}")
            if row.role == "admin" and _admins(conn) == 1:
                raise Conflict(
                    f"{name!r} is the last admin: add another admin before removing them"
                )
            conn.execute(delete(t.api_tokens).where(t.api_tokens.c.user_id == row.id))
            conn.execute(delete(t.users).where(t.users.c.id == row.id))

    def _user_row(self, name: str) -> Row:
        with read_connection(self.engine) as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return row

    # --- tokens ---------------------------------------------------------------------------

    def add_token(self, user: str, name: str, token_hash: str) -> ApiToken:
        if not name or len(name) > 64:
            raise InvalidInput("a token name is 1 to 64 characters")
        owner = self._user_row(user)
        row = {
            "id": new_id(),
            "user_id": owner.id,
            "name": name,
            "token_hash": token_hash,
            "created_at": now_ms(),
        }
        with write_transaction(self.engine) as conn:
            taken = conn.execute(
                select(t.api_tokens.c.id).where(
                    t.api_tokens.c.user_id == owner.id, t.api_tokens.c.name == name
                )
            ).first()
            if taken:
                raise Conflict(f"user {user!r} already has a token named {name!r}")
            conn.execute(t.api_tokens.insert().values(**row))
        return ApiToken(row["id"], user, name, row["created_at"])

    def user_of_token(self, token_hash: str) -> User | None:
        """The owner of a live token with this hash (and note its use), else None."""
        tok, u = t.api_tokens, t.users
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(u.c.id, u.c.name, u.c.role, u.c.created_at, tok.c.id.label("token_id"))
                .join(tok, tok.c.user_id == u.c.id)
                .where(tok.c.token_hash == token_hash, tok.c.revoked_at.is_(None))
            ).first()
        if row is None:
            return None
        return User(row.id, row.name, row.role, row.created_at)

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        tok, u = t.api_tokens, t.users
        query = select(tok, u.c.name.label("user_name")).join(u, tok.c.user_id == u.c.id)
        if user is not None:
            query = query.where(u.c.name == user)
        with read_connection(self.engine) as conn:
            rows = conn.execute(query.order_by(u.c.name, tok.c.name)).all()
        return [
            ApiToken(r.id, r.user_name, r.name, r.created_at, r.last_used_at, r.revoked_at)
            for r in rows
        ]

    def revoke_token(self, user: str, name: str) -> ApiToken:
        owner = self._user_row(user)
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(t.api_tokens)
                .where(
                    t.api_tokens.c.user_id == owner.id,
                    t.api_tokens.c.name == name,
                    t.api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now_ms())
            )
            if done.rowcount == 0:
                raise NotFound(f"user {user!r} has no live token named {name!r}")
        return next(x for x in self.list_tokens(user) if x.name == name)

    # --- failed logins --------------------------------------------------------------------

    def begin_login(
        self,
        keys: Iterable[str],
        reserve: str,
        now: int,
        forget_before: int,
        wait_of: Callable[[Mapping[str, FailedLogins]], float],
    ) -> float:
        """Decide, in one transaction, whether a login attempt may go on.

        Reads the failures counted under ``keys`` (those whose last failure is older than
        ``forget_before`` count as none), asks ``wait_of`` how long the caller must still
        wait, and when that is 0 counts a failure under ``reserve`` ahead of the password
        check, so that attempts made at once by many replicas or threads are all counted
        (a success clears it again). Returns the wait (seconds; 0: go on).
        """
        keys = list(keys)
        lf = t.login_failures
        with write_transaction(self.engine) as conn:  # SQLite: BEGIN IMMEDIATE, one writer
            if conn.dialect.name == "postgresql":
                # attempts on one name queue here, also before its first failure has a row
                # (a row lock cannot hold a row that is not there yet)
                conn.execute(select(func.pg_advisory_xact_lock(_lock_id(reserve))))
            query = select(lf).where(lf.c.key.in_(keys), lf.c.last_failure_at >= forget_before)
            found = {
                row.key: FailedLogins(row.failures, row.last_failure_at)
                for row in conn.execute(query)
            }
            wait = wait_of(found)
            if wait <= 0:
                _count_failure(conn, reserve, now, forget_before)
        return wait

    def count_failed_login(self, key: str, now: int, forget_before: int) -> None:
        """Count one failed login under ``key``, and drop the counts nobody needs any more."""
        with write_transaction(self.engine) as conn:
            _count_failure(conn, key, now, forget_before)
            conn.execute(
                delete(t.login_failures).where(t.login_failures.c.last_failure_at < forget_before)
            )

    def clear_failed_logins(self, keys: Iterable[str]) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(t.login_failures).where(t.login_failures.c.key.in_(list(keys))))

    def failed_logins(self, key: str) -> FailedLogins | None:
        """The failures counted under one key (for tests and diagnosis)."""
        lf = t.login_failures
        with read_connection(self.engine) as conn:
            row = conn.execute(select(lf).where(lf.c.key == key)).first()
        return None if row is None else FailedLogins(row.failures, row.last_failure_at)


def _admins(conn: Connection) -> int:
    """How many admins there are, inside a write: on PostgreSQL their rows stay locked until
    it ends, so two admins demoted or removed at once cannot leave none."""
    query = select(t.users.c.id).where(t.users.c.role == "admin")
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return len(conn.execute(query).all())


def _lock_id(key: str) -> int:
    """A PostgreSQL advisory lock number (a signed 64-bit integer) for a hex key."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


def _count_failure(conn: Connection, key: str, now: int, forget_before: int) -> None:
    """One more failure under ``key`` (the first, if the last one was forgotten): an UPSERT,
    atomic on SQLite and PostgreSQL alike."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    lf = t.login_failures
    stmt = dialect_insert(lf).values(key=key, failures=1, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[lf.c.key],
        set_={
            "failures": case((lf.c.last_failure_at < forget_before, 1), else_=lf.c.failures + 1),
            "last_failure_at": now,
        },
    )
    conn.execute(stmt)
