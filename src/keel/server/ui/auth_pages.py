"""Logging in and out of the web UI: ``GET/POST /login`` and ``POST /logout``.

A successful login stores the user's name in the signed session cookie
(:data:`keel.server.deps.SESSION_USER`); :func:`keel.server.deps.current_principal` reads
the role again on every request, so a changed role takes effect at once. Both forms carry
the session's CSRF token, so another site can neither log a visitor out nor into an
account of its choosing.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.server.deps import SESSION_USER, get_accounts, verify_csrf
from keel.server.ui import render

router = APIRouter(include_in_schema=False)


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

    # argon2 takes tens of milliseconds: off the event loop
    principal = await run_in_threadpool(get_accounts(request).check_password, name, password)
    if principal is None:
        return render(
            request,
            "login.html",
            status=401,
            next=safe_next(next),
            user_name=name,
            message="Wrong user name or password.",
        )
    # A fresh session: nothing from before the login (an old CSRF token included) carries over.
    request.session.clear()
    request.session[SESSION_USER] = principal.name
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await verify_csrf(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
