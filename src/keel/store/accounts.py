"""Accounts of the platform server: users, their roles and their API tokens.

This module stores and finds; it never sees a password or a token in clear. The server's
:mod:`keel.server.auth` hashes passwords (argon2id) and tokens (sha256) before they get here.
The tables live in the metadata store's database, so a team's one PostgreSQL holds them too.
"""

from __future__ import annotations

from sqlalchemy import Engine, Row, delete, func, select, update

from keel.entities import ROLES, ApiToken, User
from keel.errors import Conflict, InvalidInput, NotFound
from keel.store import schema as t
from keel.store.engine import get_engine, read_connection, write_transaction
from keel.store.sql import new_id, now_ms


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
        }
        with write_transaction(self.engine) as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            conn.execute(t.users.insert().values(**row))
        return User(row["id"], name, role, row["created_at"])

    def get_user(self, name: str) -> User:
        found = self._user_row(name)
        return User(found.id, found.name, found.role, found.created_at)

    def password_hash(self, name: str) -> str | None:
        """The stored hash of a user's password, or None when there is no such user."""
        with read_connection(self.engine) as conn:
            return conn.execute(
                select(t.users.c.password_hash).where(t.users.c.name == name)
            ).scalar()

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(t.users).where(t.users.c.name == name).values(password_hash=password_hash)
            )
            if done.rowcount == 0:
                raise NotFound(f"no user named {name!r}")

    def set_role(self, name: str, role: str) -> User:
        check_role(role)
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(t.users).where(t.users.c.name == name).values(role=role))
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
            if row.role == "admin":
                admins = conn.execute(
                    select(func.count()).select_from(t.users).where(t.users.c.role == "admin")
                ).scalar()
                if admins == 1:
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
