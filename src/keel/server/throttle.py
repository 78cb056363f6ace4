"""Password guessing slowed down: failed logins counted per user name and per client address.

The policy, for each of the two keys of a login attempt (the user name as typed, and the
client's address): ``server.login_free_attempts`` failures (default 5) are free; after ``n``
failures the next attempt must wait ``2 ** (n - free)`` seconds since the last one (1, 2,
4 … s), at most ``server.login_max_delay_s`` (default 900). An attempt made before its wait
is over is answered 429 with ``Retry-After`` **without the password being checked**, so a
guesser learns nothing, not even from a right guess, and is not counted again. A success
clears both counts. Failures are forgotten :data:`FORGET_AFTER_S` after the last one, and
their rows are deleted then.

The counts live in the metadata store (:meth:`keel.store.accounts.AccountStore.begin_login`),
so every replica of the server slows the same guesser. An attempt counts as a failure of its
user name before the password is checked (and is cleared again if it was right): attempts
sent at once, to one replica or to several, cannot all slip through while the first is being
checked. A name nobody has is counted just like a real one, so the answers never tell users
apart. The address is ``request.client.host``: the peer, or the client a trusted proxy names
(uvicorn reads ``X-Forwarded-For`` from ``FORWARDED_ALLOW_IPS`` only).

This is PostgreSQL's ``auth_delay`` made to grow, with the wait told to the caller instead
of holding its connection open: a server never sleeps on a guesser's behalf. A guesser can
make a user wait to log in with a password; API tokens (which nobody can guess) are never
slowed, so automation keeps working.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import Request

    from keel.server.auth import Accounts, Principal
    from keel.store.accounts import AccountStore, FailedLogins

#: failures whose last one is older than this are forgotten (or twice the longest wait)
FORGET_AFTER_S = 24 * 3600.0
#: the longest name shown back in a refusal
_SHOWN_NAME = 64


class TooManyLogins(Exception):
    """A login attempt made before its wait was over (answer 429, ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def failure_key(kind: str, value: str) -> str:
    """Where the failures of a user name or an address are counted: a sha256, so that names
    typed by mistake (a password in the name field) are never stored in clear."""
    return hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()


class LoginThrottle:
    """Checks passwords at the pace the policy allows.

    Args:
        store: where failures are counted (the server's metadata store).
        free_attempts: failures per key before attempts must wait.
        max_delay_s: the longest wait.
        clock: seconds since the epoch (the counts are shared, so wall-clock time); tests
            pass their own.
    """

    def __init__(
        self,
        store: AccountStore,
        free_attempts: int = 5,
        max_delay_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.free_attempts = max(1, int(free_attempts))
        self.max_delay_s = float(max_delay_s)
        self.clock = clock
        self.forget_after_s = max(FORGET_AFTER_S, 2 * self.max_delay_s)

    def delay_after(self, failures: int) -> float:
        """The wait imposed after ``failures`` failures in a row (0 while they are free)."""
        if failures < self.free_attempts:
            return 0.0
        exponent = min(failures - self.free_attempts, 62)  # 2**62 s is past any cap
        return min(float(2**exponent), self.max_delay_s)

    def wait_left(self, failed: FailedLogins, now: float) -> float:
        """How long the next attempt under a key must still wait (0: it may go now)."""
        return max(0.0, failed.last_failure_at / 1000 + self.delay_after(failed.failures) - now)

    def check_password(
        self, accounts: Accounts, name: str, password: str, address: str | None
    ) -> Principal | None:
        """The user if ``password`` is theirs, None if not; :class:`TooManyLogins` when the
        attempt comes before its wait is over (the password is then not checked)."""
        now = self.clock()
        user_key = failure_key("user", name)
        address_key = failure_key("address", address) if address else None
        keys = [user_key] if address_key is None else [user_key, address_key]
        now_ms, forget_before = round(now * 1000), round((now - self.forget_after_s) * 1000)
        binding: list[str] = []

        def wait_of(found: Mapping[str, FailedLogins]) -> float:
            waits = {key: self.wait_left(failed, now) for key, failed in found.items()}
            if not waits or max(waits.values()) <= 0:
                return 0.0
            binding.append(max(waits, key=lambda key: (waits[key], key == user_key)))
            return max(waits.values())

        wait = self.store.begin_login(keys, user_key, now_ms, forget_before, wait_of)
        if wait > 0:
            raise TooManyLogins(self._refusal(name, binding[0] == user_key, wait), math.ceil(wait))
        principal = accounts.check_password(name, password)
        if principal is None:
            if address_key is not None:  # the name's failure was counted ahead
                self.store.count_failed_login(address_key, now_ms, forget_before)
            return None
        self.store.clear_failed_logins(keys)
        return principal

    def _refusal(self, name: str, for_user: bool, wait: float) -> str:
        shown = name if len(name) <= _SHOWN_NAME else name[:_SHOWN_NAME] + "…"
        whose = f"for {shown!r}" if for_user else "from this address"
        return (
            f"too many failed logins {whose}; try again in {math.ceil(wait)} s (after "
            f"server.login_free_attempts={self.free_attempts} failures each wait doubles, up "
            f"to server.login_max_delay_s={self.max_delay_s:g} s)"
        )


def login_throttle(request: Request) -> LoginThrottle:
    """The server's throttle (made from its settings on first use; a test may set its own
    as ``app.state.login_throttle``)."""
    state = request.app.state
    found = getattr(state, "login_throttle", None)
    if found is None:
        settings = state.settings
        found = LoginThrottle(
            state.accounts.store, settings.login_free_attempts, settings.login_max_delay_s
        )
        state.login_throttle = found
    return found


async def check_login(request: Request, name: str, password: str) -> Principal | None:
    """Check a password sent to this server, at the pace the throttle allows (off the event
    loop: argon2 and the store's writes take milliseconds). Raises :class:`TooManyLogins`."""
    from starlette.concurrency import run_in_threadpool

    address = request.client.host if request.client else None
    throttle = login_throttle(request)
    return await run_in_threadpool(
        throttle.check_password, request.app.state.accounts, name, password, address
    )
