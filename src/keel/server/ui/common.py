"""What every UI router shares: the role guards, the client of the chosen project, paging.

The UI shows one project at a time: the server's own (``ServerSettings.project``) unless
the visitor picked another on the start page (kept in their session). Runs and
experiments are addressed by id, so their pages work whatever project is picked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.responses import Response

from keel.server.deps import get_client, get_settings, require

if TYPE_CHECKING:
    from keel.artifacts.base import ArtifactStore
    from keel.entities import ArtifactFile
    from keel.tracking.client import Client

SESSION_PROJECT = "project"

#: route dependencies: reading needs a viewer, changing needs an editor (and a CSRF token)
VIEWER = Depends(require("viewer"))
EDITOR = Depends(require("editor"))

_clients_lock = threading.Lock()


def project_of(request: Request) -> str:
    """The project the visitor browses."""
    chosen = request.session.get(SESSION_PROJECT) if "session" in request.scope else None
    return chosen or get_settings(request).project


def ui_client(request: Request) -> Client:
    """The client of the visitor's project (the server's own client for its project).

    Clients of other projects share the server's store and engine; they are made once per
    project and kept on the app.
    """
    base = get_client(request)
    project = project_of(request)
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
