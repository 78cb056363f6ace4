"""Passwords, API tokens and roles: who may do what on the platform server.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile);
API tokens are 256 random bits shown once as ``keel_…`` and stored as their sha256, so a
stolen database yields neither. Roles are ordered: ``viewer`` reads, ``editor`` also writes,
``admin`` also manages users.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from keel.entities import ROLES, ApiToken, User
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from keel.store.accounts import AccountStore

TOKEN_PREFIX = "keel_"
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or ``anonymous`` (a viewer, when the server allows it)."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this caller has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


ANONYMOUS = Principal("anonymous", "viewer")


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher().hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    """A random password for a first admin (printed once)."""
    return secrets.token_urlsafe(12)


class Accounts:
    """Users and tokens with their secrets handled: the policy over :class:`AccountStore`."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store

    def add_user(self, name: str, password: str, role: str = "viewer") -> User:
        return self.store.add_user(name, hash_password(password), role)

    def check_password(self, name: str, password: str) -> Principal | None:
        """The user if ``password`` is theirs, else None (the same time either way)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        stored = self.store.password_hash(name)
        hasher = _hasher()
        if stored is None:
            # verify against a throwaway hash so an unknown name costs what a known one does
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(_dummy_hash(), password)
            return None
        try:
            hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if hasher.check_needs_rehash(stored):
            self.store.set_password_hash(name, hasher.hash(password))
        user = self.store.get_user(name)
        return Principal(user.name, user.role)

    def create_token(self, user: str, name: str) -> tuple[ApiToken, str]:
        """A new token for ``user``: its record and the secret (shown once, never stored)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        return self.store.add_token(user, name, token_hash(secret)), secret

    def check_token(self, secret: str) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        user = self.store.user_of_token(token_hash(secret))
        return None if user is None else Principal(user.name, user.role)


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_hex(16))
