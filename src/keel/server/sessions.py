"""The web UI's session cookie: signed, ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` over https.

:class:`SessionCookies` is Starlette's ``SessionMiddleware`` twice over: a request that came
over https gets its cookie marked ``Secure`` (a browser then never sends it over plain
HTTP), any other gets it unmarked, unless ``server.secure_cookies`` marks it always.

"Came over https" is the request's scheme as uvicorn sets it: https when uvicorn itself
serves TLS, or when a proxy it trusts sends ``X-Forwarded-Proto: https`` (``keel server``
runs uvicorn with ``proxy_headers=True``; the trusted proxies are ``FORWARDED_ALLOW_IPS``,
127.0.0.1 by default). A header from anyone else is ignored by uvicorn, so a client cannot
talk the server out of the flag, only a trusted proxy into it. Behind a proxy uvicorn does
not trust, set ``server.secure_cookies: true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

SECURE_SCHEMES = frozenset({"https", "wss"})


class SessionCookies:
    """Signed session cookies, marked ``Secure`` on https requests (or always).

    Args:
        app: the app inside.
        secure_always: mark the cookie ``Secure`` on every answer.
        **options: Starlette's ``SessionMiddleware`` options (secret key, name, age…).
    """

    def __init__(self, app: ASGIApp, secure_always: bool = False, **options: Any) -> None:
        from starlette.middleware.sessions import SessionMiddleware

        self.secure = SessionMiddleware(app, https_only=True, **options)
        self.plain = self.secure if secure_always else SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        over_tls = scope.get("scheme") in SECURE_SCHEMES
        await (self.secure if over_tls else self.plain)(scope, receive, send)
