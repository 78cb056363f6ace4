"""What every UI router shares: the role guards, project URLs and clients, paging.

Every page of a project's records lives under ``/projects/{project}/…``
(:func:`project_url`), so a link names its project and shows the same page to anyone who
may read it, whatever project they looked at last. The session only remembers the last
project the visitor looked at (``SESSION_PROJECT``): the start page ``/`` and the old
project-less URLs (:mod:`keel.server.ui.legacy`) go there.

Project names may hold ``/``; in a URL the project is one path segment, its ``/`` written
as ``~`` (a character names never hold), e.g. ``/projects/team~vision/models``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from keel.errors import InvalidInput, NotFound
from keel.server.deps import get_client, get_settings, require
from keel.server.ui.formatting import project_url

if TYPE_CHECKING:
    from keel.artifacts.base import ArtifactStore
    from keel.entities import ArtifactFile
    from keel.tracking.client import Client

SESSION_PROJECT = "project"
PROJECTS = "/projects"

#: route dependencies: reading needs a viewer, changing needs an editor (and a CSRF token)
VIEWER = Depends(require("viewer"))
EDITOR = Depends(require("editor"))

_clients_lock = threading.Lock()


def project_of_slug(slug: str) -> str:
    """The project a URL segment names (the router has already undone percent-escapes)."""
    return slug.replace("~", "/")


def last_project(request: Request) -> str | None:
    """The project the visitor looked at last (kept in their session), if any."""
    if "session" not in request.scope:
        return None
    chosen = request.session.get(SESSION_PROJECT)
    return chosen if isinstance(chosen, str) and chosen else None


def remember_project(request: Request, project: str) -> None:
    """Remember ``project`` as the last one the visitor looked at (for ``/`` and old URLs)."""
    if "session" in request.scope and request.session.get(SESSION_PROJECT) != project:
        request.session[SESSION_PROJECT] = project


def known_projects(client: Client) -> set[str]:
    """The projects of the store that hold anything, and the server's own project."""
    return {p.name for p in client.projects_summary()} | {client.project}


def project_client(request: Request, slug: str, known: set[str] | None = None) -> Client:
    """The client of the project a URL names, remembered as the visitor's last project.

    A project the store does not hold (``known``, when the caller has them already) is a 404
    naming the projects it does hold. Clients of projects other than the server's share its
    settings; each is made once and kept on the app.
    """
    from keel.store.validation import check_name

    project = project_of_slug(slug)
    base = get_client(request)
    state = request.app.state
    if project != base.project:
        clients: dict[str, Client] = getattr(state, "ui_project_clients", None) or {}
        if project not in clients:
            try:
                check_name(project, "project")
            except InvalidInput:  # a name no project can have: no such project
                raise NotFound(f"there is no project {project!r} in this store") from None
            known = known if known is not None else known_projects(base)
            if project not in known:
                raise NotFound(
                    f"there is no project {project!r} in this store; its projects: "
                    + ", ".join(sorted(known))
                )
    client = _client_of(request, project)
    remember_project(request, project)
    request.state.ui_project = project  # an error page of this request links this project
    return client


def elsewhere(request: Request, project: str, path: str) -> Response:
    """A redirect to the same page under the project that holds its record (ids are global,
    so a link with the wrong project still finds the record), keeping the query."""
    query = request.url.query
    return RedirectResponse(project_url(project, path) + (f"?{query}" if query else ""), 307)


def _client_of(request: Request, project: str) -> Client:
    base = get_client(request)
    if project == base.project:
        return base
    state = request.app.state
    with _clients_lock:
        clients: dict[str, Client] = getattr(state, "ui_project_clients", None) or {}
        state.ui_project_clients = clients
        if project not in clients:
            from keel.tracking.client import Client

            settings = get_settings(request)
            clients[project] = Client(
                store=settings.store, artifacts=settings.artifacts, project=project
            )
            clients[project].store.query_timeout_s = base.store.query_timeout_s
        return clients[project]


def wants_fragment(request: Request, target: str) -> bool:
    """Whether htmx asked to replace the element ``#target`` only (not the whole page)."""
    return request.headers.get("hx-request") == "true" and (
        request.headers.get("hx-target") == target
    )


@dataclass(frozen=True)
class Page:
    """One page of a long list: which rows, and whether there is a next page.

    Lists are read with ``limit=size + 1``: the extra row says a next page exists without
    counting every matching row (a count over 100,000 runs costs more than the page).
    """

    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size + 1


PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE = 1_000_000


def page_of(number: int | None, size: int | None, default_size: int = 50) -> Page:
    """A page from query parameters, clamped to sensible values."""
    chosen = size if size in PAGE_SIZES else default_size
    return Page(min(max(1, number or 1), MAX_PAGE), chosen)


def blob_response(store: ArtifactStore, stored: ArtifactFile) -> Response:
    """A stored file as a download, always as an attachment: it is a user's content, not the
    server's, and shown inline it could be a page that runs scripts on this site."""
    name = PurePosixPath(stored.path).name
    headers = {
        "Content-Disposition": _attachment(name),
        "X-Content-Type-Options": "nosniff",
        # content-addressed: the same sha256 is the same bytes
        "Cache-Control": "private, max-age=86400",
        "ETag": f'"{stored.sha256}"',
    }
    local = store.local_path(stored.sha256)
    if local is not None:
        from fastapi.responses import FileResponse

        return FileResponse(local, media_type="application/octet-stream", headers=headers)
    from fastapi.responses import StreamingResponse

    handle = store.open(stored.sha256)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(1 << 20):
                yield block

    headers["Content-Length"] = str(stored.size)
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


def _attachment(name: str) -> str:
    """A Content-Disposition value safe for any file name (RFC 6266 and 5987)."""
    from urllib.parse import quote

    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
