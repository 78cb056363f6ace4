"""The web UI: server-rendered pages (Jinja2) made live with htmx, charts with plotly.

Everything the pages need ships with keel (htmx vendored under ``static/``, plotly's own
``plotly.min.js`` from the plotly package), so the UI works with no internet.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).parent


@cache
def templates() -> Environment:
    """The Jinja2 environment of the UI (autoescaping on: every value is text unless marked)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html", "xml")),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/<name>`` with the caller, the CSRF token and the request."""
    from keel.server.deps import csrf_token

    principal = getattr(request.state, "principal", None)
    html = templates().get_template(name).render(
        request=request,
        principal=principal,
        csrf_token=csrf_token(request),
        **context,
    )
    return HTMLResponse(html, status_code=status)


async def error_page(request: Request, status: int, message: str) -> Response:
    """A refusal as a page; a missing login sends the browser to the login page."""
    if status == 401 and request.method == "GET":
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return render(request, "error.html", status=status, status_code=status, message=message)


def mount_ui(app: FastAPI) -> None:
    """Add the UI's routes and static files to ``app``."""
    from starlette.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
