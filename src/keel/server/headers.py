"""The security headers on every answer of the platform server (``keel server``).

:class:`SecurityHeaders` is a pure ASGI layer that adds, to each answer that does not set
the header itself:

* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page of another origin
  (another port counts) can show the UI in a frame and trick a click on it (clickjacking).
  The UI never frames itself, so ``DENY`` rather than MLflow's ``SAMEORIGIN``.
* ``Content-Security-Policy`` (:data:`CONTENT_SECURITY_POLICY`): scripts, styles, fonts
  and requests from the server itself only; no inline scripts, no ``eval``, no inline
  styles, no plugins, no ``<base>``, forms post to the server only. The UI's pages satisfy
  it (htmx and plotly are served from ``/static``, keel.js wires the pages' behaviour,
  htmx's own inline styles are turned off in ``base.html``); the one inline style allowed
  is an empty ``<style>`` element, which plotly fills through the CSSOM
  (:data:`EMPTY_STYLE`). Images may also be ``data:`` URIs (the pipelines' result
  images). Swagger UI's ``/docs`` page starts itself with an inline script: on the pages
  in ``inline_script_paths`` the policy allows exactly the inline scripts the page
  carries, by their SHA-256 (nothing injected could match).
* ``X-Content-Type-Options: nosniff``: a browser never runs an uploaded artifact served as
  text or JSON as a script or a page.
* ``Referrer-Policy: same-origin``: links out of the UI do not tell other sites which run,
  model or filter was being looked at.
* ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Resource-Policy:
  same-origin``: a page of another origin gets no handle on a UI window it opens, and cannot
  load the server's answers as images or scripts of its own.

Not sent: ``Strict-Transport-Security`` (keel cannot know that TLS ends in front of it and
will stay: the proxy that holds the certificate sends it). Django's ``SecurityMiddleware``
and MLflow 3.5's security middleware (``X-Content-Type-Options``, ``X-Frame-Options``)
were the references.

:func:`secure_every_answer` installs the layer around the whole app, outside Starlette's
own error layer, so a 500 page and the framework's own refusals carry the headers too.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the CSP source of an empty ``<style>`` element: plotly.js adds its rules to one through
#: the CSSOM (``sheet.insertRule``, which CSP leaves alone); nothing can be injected in it
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"

#: what the UI's pages may load and do; see the module's docstring
POLICY: tuple[tuple[str, str], ...] = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", f"'self' {EMPTY_STYLE}"),
    ("img-src", "'self' data:"),
    ("font-src", "'self'"),
    ("connect-src", "'self'"),
    ("object-src", "'none'"),
    ("base-uri", "'none'"),
    ("form-action", "'self'"),
    ("frame-ancestors", "'none'"),
)


def policy_text(extra_scripts: Iterable[str] = ()) -> str:
    """The Content-Security-Policy header's value, with ``extra_scripts`` (CSP sources such
    as ``'sha256-…'``) also allowed as scripts."""
    extra = " ".join(extra_scripts)
    return "; ".join(
        f"{name} {value} {extra}" if name == "script-src" and extra else f"{name} {value}"
        for name, value in POLICY
    )


CONTENT_SECURITY_POLICY = policy_text()

#: the headers every answer gets (names in lower case, as ASGI carries them)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

#: pages whose own inline scripts are allowed by hash (Swagger UI starts from one)
INLINE_SCRIPT_PATHS = ("/docs",)

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)


def script_hashes(html: bytes) -> list[str]:
    """CSP sources (``'sha256-…'``) of the inline scripts of an HTML page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def with_defaults(
    headers: Iterable[tuple[bytes, bytes]], defaults: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` and each of ``defaults`` whose name they lack (a route's own header wins)."""
    found = list(headers)
    present = {name.lower() for name, _ in found}
    return found + [(name, value) for name, value in defaults if name not in present]


class SecurityHeaders:
    """ASGI layer adding :data:`HEADERS` to every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp, inline_script_paths: Collection[str] = INLINE_SCRIPT_PATHS):
        self.app = app
        self.inline_script_paths = frozenset(inline_script_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.inline_script_paths:
            await self._hashing_scripts(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_defaults(message.get("headers", ()), HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _hashing_scripts(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The answer held back until whole (a small page), then sent with a policy that
        allows exactly its own inline scripts."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_when_whole(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            policy = policy_text(script_hashes(body)).encode("ascii")
            defaults = [(n, policy if n == b"content-security-policy" else v) for n, v in HEADERS]
            start["headers"] = with_defaults(start.get("headers", ()), defaults)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_when_whole)


def secure_every_answer(app: Starlette) -> None:
    """Wrap ``app``'s whole middleware stack in :class:`SecurityHeaders`.

    ``app.add_middleware`` would place it inside Starlette's ``ServerErrorMiddleware`` and
    FastAPI's body-size layer, whose answers (the 500 page, their refusals) would then go
    out without the headers; wrapping the built stack puts it outside everything, however
    many layers are added after this call."""
    build = app.build_middleware_stack

    def build_secured() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_secured  # type: ignore[method-assign]
