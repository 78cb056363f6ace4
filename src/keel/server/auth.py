"""Passwords, API tokens, sessions and roles: who may do what on the platform server.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile);
API tokens are 256 random bits shown once as ``keel_…`` and stored as their sha256, so a
stolen database yields neither. Roles are ordered: ``viewer`` reads, ``editor`` also writes,
``admin`` also manages users.

A new password must have :data:`MIN_PASSWORD_LENGTH` characters, differ from the user name
and not be one of the 20,000 most common passwords (Django's list, vendored beside this
module as ``common-passwords.txt.gz``, read the first time a password is set). Every way of
setting one (``keel users add/passwd``, the REST API) comes through :class:`Accounts`.

A browser session counts while the user's session key (kept in the store, see
:mod:`keel.store.accounts`) is the one its cookie carries: a logout, a new password and a
new role replace the key, so every copy of every cookie of that user stops working on every
replica; removing the user deletes it with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from keel.entities import ROLES, ApiToken, User
from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from keel.store.accounts import AccountStore

TOKEN_PREFIX = "keel_"
MIN_PASSWORD_LENGTH = 8
COMMON_PASSWORDS = "common-passwords.txt.gz"


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


def check_new_password(name: str, password: str) -> str:
    """Refuse a password that is short, the user's name, or one of the most common ones."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    folded = password.strip().lower()
    if folded == name.strip().lower():
        raise InvalidInput("this password is the user name; choose another")
    if folded in _common_passwords():
        raise InvalidInput("this password is one of the 20,000 most common; choose another")
    return password


@cache
def _common_passwords() -> frozenset[str]:
    """Django's list of common passwords (lower-cased), read once, when first needed."""
    import gzip
    from importlib import resources

    data = resources.files("keel.server").joinpath(COMMON_PASSWORDS).read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


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
        check_new_password(name, password)
        return self.store.add_user(name, hash_password(password), role)

    def set_password(self, name: str, password: str) -> None:
        """A new password for ``name``; their sessions end everywhere."""
        check_new_password(name, password)
        self.store.get_user(name)  # an unknown user is refused before argon2's work
        self.store.set_password_hash(name, hash_password(password))

    def set_role(self, name: str, role: str) -> User:
        """A new role for ``name`` (the last admin stays one); their sessions end."""
        return self.store.set_role(name, role)

    def remove_user(self, name: str) -> None:
        """Remove ``name`` with their tokens; their session key goes with them."""
        self.store.remove_user(name)

    def end_sessions(self, name: str) -> None:
        """Log ``name`` out of every browser, on every replica."""
        self.store.end_sessions(name)

    def session_key(self, name: str) -> str:
        """The key a new session cookie of ``name`` carries."""
        found = self.store.user_and_session_key(name)
        if found is None:
            raise NotFound(f"no user named {name!r}")
        return found[1]

    def check_session(self, name: str, key: object) -> Principal | None:
        """The user of a session cookie if its key is still theirs, else None (one read)."""
        found = self.store.user_and_session_key(name)
        if found is None or not isinstance(key, str):
            return None
        user, current = found
        if not current or not secrets.compare_digest(current.encode(), key.encode()):
            return None
        return Principal(user.name, user.role)

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
        if hasher.check_needs_rehash(stored):  # the same password: sessions go on
            self.store.rehash_password(name, stored, hasher.hash(password))
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
