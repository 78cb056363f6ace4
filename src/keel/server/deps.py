"""Per-request dependencies of the platform server: the client, the caller and their rights.

Every route declares what it needs with ``Depends(require("editor"))`` (or ``viewer`` /
``admin``). A caller is recognised by a bearer token (REST) or the signed session cookie
(the UI); without either, they are an anonymous viewer when the server allows anonymous
reads, and refused (401) otherwise. A caller without the role gets 403.

The session cookie holds the user's name and their session key; it counts only while that
key is still the user's in the store (:meth:`keel.server.auth.Accounts.check_session`, the
one read per request that also gives the role), so a logout, a new password, a new role or
the user's removal ends it on every replica. A cookie that no longer counts is emptied.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from keel.server.auth import ANONYMOUS, Accounts, Principal

if TYPE_CHECKING:
    from keel.server.settings import ServerSettings
    from keel.tracking.client import Client

SESSION_USER = "user"
SESSION_KEY = "key"
SESSION_CSRF = "csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_client(request: Request) -> Client:
    """The server's own client over its store (shared by every request)."""
    return request.app.state.client


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def current_principal(request: Request) -> Principal:
    """Who is calling (cached on the request), or 401 when nobody may be anonymous."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    accounts = get_accounts(request)
    found: Principal | None = None
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise HTTPException(401, "use 'Authorization: Bearer <token>' (keel tokens create)")
        found = accounts.check_token(secret.strip())
        if found is None:
            raise HTTPException(401, "this API token is unknown or revoked")
        request.state.via_token = True
    elif "session" in request.scope:
        found = session_principal(request)
    if found is None:
        if not get_settings(request).anonymous_read:
            raise HTTPException(401, "log in, or send an API token (keel tokens create)")
        found = ANONYMOUS
    request.state.principal = found
    return found


def session_principal(request: Request) -> Principal | None:
    """The user of the session cookie while its key is theirs (the role read afresh), else
    None, with the cookie emptied: that session was ended, or its user removed."""
    name = request.session.get(SESSION_USER)
    if not name or not isinstance(name, str):
        return None
    found = get_accounts(request).check_session(name, request.session.get(SESSION_KEY))
    if found is None:
        request.session.clear()
    return found


def start_session(request: Request, name: str, key: str) -> None:
    """A fresh session for ``name``: nothing from before the login (an old CSRF token
    included) carries over."""
    request.session.clear()
    request.session[SESSION_USER] = name
    request.session[SESSION_KEY] = key


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use), for forms and htmx headers."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request whose CSRF token is not the session's.

    Requests authenticated by a bearer token are exempt: a browser never adds one by itself,
    so another site cannot forge them.
    """
    if request.method in SAFE_METHODS or getattr(request.state, "via_token", False):
        return
    expected = request.session.get(SESSION_CSRF) if "session" in request.scope else None
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # cached on the request for the route to read again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise HTTPException(403, "the form is out of date (CSRF check failed): reload the page")


def role_refusal(principal: Principal, role: str) -> HTTPException:
    """403: ``principal`` lacks ``role`` (the words every route's role check answers with)."""
    who = "anonymous callers" if principal is ANONYMOUS else f"{principal.name!r}"
    return HTTPException(
        403, f"{who} may not do this: it needs the {role} role ({principal.role} now)"
    )


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets the request through only for ``role`` or a higher one.

    State-changing requests from a browser session must also carry the CSRF token. An
    anonymous reader's are exempt: a forged request would act as nobody, with a reader's
    rights only (MLflow's searches are POSTs an anonymous MLflow client makes).
    """

    async def check(request: Request) -> Principal:
        principal = getattr(request.state, "principal", None)
        if principal is None:  # reads the store (token, session's user): off the event loop
            from starlette.concurrency import run_in_threadpool

            principal = await run_in_threadpool(current_principal, request)
        if not principal.may(role):
            raise role_refusal(principal, role)
        if principal is not ANONYMOUS:
            await verify_csrf(request)
        return principal

    check.required_role = role  # type: ignore[attr-defined]  # read by the route audit test
    return check
