"""The web UI: server-rendered pages (Jinja2) made live with htmx, charts with plotly.

Everything the pages need ships with keel (htmx vendored under ``static/``, plotly's own
``plotly.min.js`` from the plotly package), so the UI works with no internet.

This package owns the Jinja2 environment, :func:`render` and the error page; each area has
its router module: :mod:`.pages` (start page, experiment), :mod:`.runs` (run, charts,
artifacts, compare), :mod:`.models`, :mod:`.datasets`, :mod:`.pipelines`, :mod:`.jobs`,
:mod:`.auth_pages` (login). The helpers they share are in :mod:`.common`,
:mod:`.formatting`, :mod:`.filters`, :mod:`.series`, :mod:`.downsample` and :mod:`.charts`.
"""

from __future__ import annotations

from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.errors import KeelError

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).parent


@cache
def templates() -> Environment:
    """The Jinja2 environment of the UI (autoescaping on: every value is text unless marked)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from keel.server.ui.formatting import FILTERS, GLOBALS

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html", "xml")),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/<name>`` with the caller, the CSRF token and the request."""
    from keel.server.deps import csrf_token

    principal = getattr(request.state, "principal", None)
    html = (
        templates()
        .get_template(name)
        .render(
            request=request,
            principal=principal,
            csrf_token=csrf_token(request),
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


async def error_page(request: Request, status: int, message: str) -> Response:
    """A refusal as a page; a missing login sends the browser to the login page."""
    if status == 401 and request.method == "GET":
        from urllib.parse import quote, urlsplit

        htmx = request.headers.get("hx-request") == "true"
        # after logging in, come back to the page, not to the panel htmx was loading
        url = urlsplit(request.headers.get("hx-current-url", "")) if htmx else request.url
        here = (url.path or "/") + (f"?{url.query}" if url.query else "")
        login = f"/login?next={quote(here, safe='/')}"
        if htmx:  # htmx would swap the login page into a panel: have it load the whole page
            return Response(status_code=401, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)
    if status == 404 and message == "Not Found":  # Starlette's words for an unknown path
        message = f"There is no page at {request.url.path}."
    _know_the_caller(request)
    return render(request, "error.html", status=status, status_code=status, message=message)


def _know_the_caller(request: Request) -> None:
    """Find who is calling, if the failed route did not get that far, for the top bar."""
    from fastapi import HTTPException

    from keel.server.deps import current_principal

    if getattr(request.state, "principal", None) is None:
        # a page about an error must not fail itself
        with suppress(HTTPException, KeelError):
            current_principal(request)


def mount_ui(app: FastAPI) -> None:
    """Add the UI's routes and static files to ``app``."""
    from starlette.staticfiles import StaticFiles

    from keel.server.ui import auth_pages, datasets, jobs, models, pages, pipelines, runs

    for module in (auth_pages, pages, runs, models, datasets, pipelines, jobs):
        app.include_router(module.router)
    # Before the /static mount, which would otherwise answer this path with a 404. A plain
    # route like the mount (no role): the login page needs its static files too.
    app.add_route("/static/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")


@cache
def plotly_js_path() -> Path:
    """plotly's own bundle, from the installed plotly package (no CDN: works offline)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


async def plotly_js(request: Request) -> Response:
    from fastapi.responses import FileResponse

    # 4.6 MB that changes only with the plotly package: let browsers keep it a day
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
