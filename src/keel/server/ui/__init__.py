"""The web UI: server-rendered pages (Jinja2) made live with htmx, charts with plotly.

Everything the pages need ships with keel (htmx vendored under ``static/``, plotly's own
``plotly.min.js`` from the plotly package), so the UI works with no internet. Pages load
them by versioned URLs (``static_url``), served gzipped and cached for a year.

This package owns the Jinja2 environment, :func:`render` and the error page; each area has
its router module: :mod:`.pages` (start page, experiment), :mod:`.runs` (run, charts,
artifacts, compare), :mod:`.models`, :mod:`.monitoring` (drift), :mod:`.datasets`,
:mod:`.pipelines`, :mod:`.jobs`, :mod:`.auth_pages` (login), :mod:`.legacy` (the old
project-less URLs, redirected). Pages of a project's records live under
``/projects/{project}/`` (see :mod:`.common`). The helpers they share are in
:mod:`.common`, :mod:`.formatting`, :mod:`.filters`, :mod:`.series`, :mod:`.downsample`,
:mod:`.charts` and :mod:`.drift_charts`.
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

    from keel.serving.assets import AssetFolder

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
    env.globals["static_url"] = static_url
    return env


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/<name>`` with the caller, the CSRF token and the request.

    A page about one project passes ``project``: its links are then made with ``purl(path)``,
    the URL of ``path`` in that project (see :func:`keel.server.ui.common.project_url`).
    """
    from functools import partial

    from keel.server.deps import csrf_token
    from keel.server.ui.formatting import project_url

    project = context.get("project")
    if isinstance(project, str):
        context["purl"] = partial(project_url, project)
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
    # a page of a project (its name checked) that failed: the top bar still links that project
    project = getattr(request.state, "ui_project", None)
    return render(
        request, "error.html", status=status, status_code=status, message=message, project=project
    )


def missing_page(request: Request, message: str, elsewhere: list[tuple[str, str]]) -> Response:
    """A 404 page for a name the project does not hold, linking where it is instead:
    ``elsewhere`` holds (project, URL of the same page in that project)."""
    return render(
        request,
        "error.html",
        status=404,
        status_code=404,
        message=message,
        elsewhere=elsewhere,
        project=getattr(request.state, "ui_project", None),
    )


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
    from keel.server.ui import (
        auth_pages,
        datasets,
        jobs,
        legacy,
        models,
        monitoring,
        pages,
        pipelines,
        runs,
    )

    # monitoring before models: /models/{name:path} would take …/v/{version}/drift as a name.
    # legacy last: its /projects/{rest:path} catches only what no project page matched
    modules = (auth_pages, pages, runs, monitoring, models, datasets, pipelines, jobs, legacy)
    for module in modules:
        app.include_router(module.router)
    # A plain route (no role): the login page needs its static files too.
    app.router.routes.append(static_files().route())


@cache
def static_files() -> AssetFolder:
    """``/static``: the files of ``static/`` and plotly's bundle, compressed and cached
    (a 4.8 MB script: 1.4 MB gzipped, then never fetched again, see
    :mod:`keel.serving.assets`)."""
    from keel.serving.assets import AssetFolder

    return AssetFolder("/static", HERE / "static", {"plotly.min.js": plotly_js_path})


def static_url(name: str) -> str:
    """``/static/<name>?v=<its hash>``, the URL pages load it by (``static_url`` in the
    templates): browsers keep it for a year, and a changed file gets a new URL."""
    return static_files().url(name)


@cache
def plotly_js_path() -> Path:
    """plotly's own bundle, from the installed plotly package (no CDN: works offline)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
