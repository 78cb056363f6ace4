"""Logging in and out of the web UI: ``GET/POST /login`` and ``POST /logout``.

A successful login stores the user's name and session key in the signed session cookie
(:func:`keel.server.deps.start_session`), keeping only the project the same user looked at
last (so ``/`` goes back there; with none, to the project worth landing on, see
:func:`keel.server.ui.pages.landing_project`); :func:`keel.server.deps.current_principal` reads
the role and the key again on every request, so a changed role takes effect at once and an
ended session stops at once. Logging out replaces the user's session key: it ends every
session of theirs, in every browser, on every replica (a "log out everywhere"). Both forms
carry the session's CSRF token, so another site can neither log a visitor out nor into an
account of its choosing.

Failed logins are slowed (:mod:`keel.server.throttle`): an attempt made too soon after
too many failures is answered 429 with ``Retry-After`` and the form, its password unchecked.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.server.deps import (
    SESSION_USER,
    get_accounts,
    session_principal,
    start_session,
    verify_csrf,
)
from keel.server.guard import GuardedRoute
from keel.server.ui import render
from keel.server.ui.common import last_project, remember_project

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=safe_next(next), user_name="", message=None)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
) -> Response:
    await verify_csrf(request)
    from starlette.concurrency import run_in_threadpool

    from keel.server.throttle import TooManyLogins, check_login

    try:
        principal = await check_login(request, name, password)
    except TooManyLogins as exc:
        page = render(
            request,
            "login.html",
            status=429,
            next=safe_next(next),
            user_name=name,
            message=exc.message,
        )
        page.headers.update(exc.headers)
        return page
    if principal is None:
        return render(
            request,
            "login.html",
            status=401,
            next=safe_next(next),
            user_name=name,
            message="Wrong user name or password.",
        )
    key = await run_in_threadpool(get_accounts(request).session_key, principal.name)
    # the project this user looked at last, kept across the fresh session: ``/`` goes there
    same_user = request.session.get(SESSION_USER) == principal.name
    last = last_project(request) if same_user else None
    start_session(request, principal.name, key)
    if last is not None:
        remember_project(request, last)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Log out of every browser: the user's session key is replaced, so every copy of every
    session cookie of theirs stops counting, on every replica."""
    await verify_csrf(request)
    from starlette.concurrency import run_in_threadpool

    principal = await run_in_threadpool(session_principal, request)
    if principal is not None:  # a session already ended ends nothing more
        await run_in_threadpool(get_accounts(request).end_sessions, principal.name)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
