"""Who an MLflow client is: a keel API token, or a keel user's password sent as HTTP Basic.

MLflow's client sends ``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer …`` (keel's own API
tokens, as for ``/api/v1``) and ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` as
``Authorization: Basic …``, checked here against the user's argon2 hash. Either way the caller
is known before the route's role check (:func:`keel.server.deps.require`) runs.

The client sends its credentials with every call, one call per logged metric: checking a
password costs ~50 ms of CPU by design and a token a database read, so a header that was
accepted is remembered (by its sha256, never in clear) for :data:`REMEMBER_S` seconds. A
revoked token, a changed password or a changed role takes effect within that time for MLflow
clients. A refused header is never remembered.

Passwords sent as Basic are checked at the pace of :mod:`keel.server.throttle`, as at the UI's
``/login`` and with the same counts: too many failures and the next attempt is answered 429
(MLflow's ``REQUEST_LIMIT_EXCEEDED``) with ``Retry-After``, its password unchecked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from keel.server.deps import get_accounts

if TYPE_CHECKING:
    from keel.server.auth import Principal

REMEMBER_S = 10.0
_MAX_REMEMBERED = 1024


async def login(request: Request) -> None:
    """Recognise the caller of an MLflow route by token or password (401 if the password is
    wrong); without credentials the role check decides (401, or an anonymous viewer)."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer") or not credentials.strip():
        return
    remembered = _remembered(request)
    key = hashlib.sha256(header.encode()).hexdigest()
    now = time.monotonic()
    hit = remembered.get(key)
    if hit is not None and hit[1] > now:
        principal = hit[0]
    else:
        found = (
            await _check_password(request, credentials)
            if scheme == "basic"
            else await run_in_threadpool(get_accounts(request).check_token, credentials.strip())
        )
        if found is None:
            return  # an unknown token: the role check answers 401 with keel's words
        principal = found
        if len(remembered) >= _MAX_REMEMBERED:
            remembered.clear()
        remembered[key] = (principal, now + REMEMBER_S)
    request.state.principal = principal
    # sent by the caller on purpose, never added by a browser: no CSRF check (deps.verify_csrf)
    request.state.via_token = True


async def _check_password(request: Request, credentials: str) -> Principal:
    try:
        user, sep, password = base64.b64decode(credentials.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: a non-ASCII header
        user, sep, password = "", "", ""
    if not sep or not user:
        raise HTTPException(401, "malformed Basic credentials: send user:password")
    from keel.server.throttle import TooManyLogins, check_login

    try:
        found = await check_login(request, user, password)
    except TooManyLogins as exc:
        raise HTTPException(429, exc.message, headers=exc.headers) from None
    if found is None:
        raise HTTPException(401, "unknown user or wrong password")
    return found


def _remembered(request: Request) -> dict[str, tuple[Principal, float]]:
    state = request.app.state
    found = getattr(state, "mlflow_logins", None)
    if found is None:
        found = {}
        state.mlflow_logins = found
    return found
