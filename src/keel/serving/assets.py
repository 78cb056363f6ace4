"""Static files served compressed and cached, and the Swagger UI of both servers' ``/docs``.

Both ``keel server`` (the UI's ``/static``: htmx, plotly's 4.8 MB bundle, keel's css and js)
and ``keel serve`` (``/docs``) send the same kind of files, so both use :class:`AssetFolder`:

* Each file is read once per process (again only when it changes on disk) and kept in
  memory; the first 16 hex digits of its SHA-256 are its *version*.
* Its gzip form is made once, on the first request that accepts gzip, in a worker thread
  (plotly takes ~0.5 s), and kept: never compressed per request. It is sent when the
  request's ``Accept-Encoding`` allows gzip, with ``Vary: Accept-Encoding`` and the
  ``Content-Length`` of the compressed bytes. Images (already compressed) go as they are.
* :meth:`AssetFolder.url` gives ``/static/plotly.min.js?v=<version>``: an answer to that
  exact URL is ``Cache-Control: public, max-age=31536000, immutable`` (a new file is a new
  URL). Any other URL of the file (no ``v``, or an old one) is ``no-cache`` with a strong
  ``ETag``, and ``If-None-Match`` is answered ``304 Not Modified``.

The Swagger UI files are swagger-ui-dist 5 from npm, vendored under ``swagger_ui/`` (see its
README): Swagger UI 4 cannot render an OpenAPI 3.1 document, which both servers emit.
:func:`swagger_page` is the ``/docs`` page that loads them. Here rather than in
``keel.server`` because the serving layer sits below it and needs them too.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

#: a URL that names the file's version never changes meaning: keep it a year, never ask again
IMMUTABLE = "public, max-age=31536000, immutable"
#: any other URL: keep it, but ask with If-None-Match before each use (a 304 is cheap)
REVALIDATE = "no-cache"

#: media types by suffix (``mimetypes`` depends on the machine's /etc/mime.types)
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".ico": "image/x-icon",
    "": "text/plain; charset=utf-8",  # LICENSE, NOTICE
}
#: suffixes worth compressing (text); images and fonts are compressed already
COMPRESSIBLE = {".js", ".css", ".html", ".json", ".map", ".svg", ".txt", ".md", ""}

SWAGGER_UI = Path(__file__).parent / "swagger_ui"
SWAGGER_PREFIX = "/_static/swagger"


@dataclass
class Asset:
    """One file as served: its bytes, its version and (once asked for) its gzip form."""

    body: bytes
    media_type: str
    version: str
    compressible: bool
    stamp: tuple[int, int]  # (mtime_ns, size) when read: a change on disk reads it again
    _gzipped: bytes | None = None

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def gzip_etag(self) -> str:
        # a strong ETag names one representation: the gzip bytes differ from the file's
        return f'"{self.version}-gzip"'

    def gzipped(self) -> bytes | None:
        """The gzip form (made on first call), or None when it would not be smaller."""
        if not self.compressible:
            return None
        if self._gzipped is None:
            # one thread compresses, the others wait for its bytes (not 0.5 s of CPU each)
            with _gzip_lock:
                if self._gzipped is None:
                    # mtime=0: the same file gives the same bytes in every process
                    self._gzipped = gzip.compress(self.body, compresslevel=9, mtime=0)
        return self._gzipped if len(self._gzipped) < len(self.body) else None


_lock = threading.Lock()
_gzip_lock = threading.Lock()
_assets: dict[Path, Asset] = {}


def load(path: Path) -> Asset:
    """``path`` as an :class:`Asset`, read once per process and again only if it changed."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        found = _assets.get(path)
        if found is not None and found.stamp == stamp:
            return found
    body = path.read_bytes()
    suffix = path.suffix.lower()
    asset = Asset(
        body=body,
        media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        version=hashlib.sha256(body).hexdigest()[:16],
        compressible=suffix in COMPRESSIBLE,
        stamp=stamp,
    )
    with _lock:
        _assets[path] = asset
    return asset


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip;q=0`` refuses it, and an
    explicit refusal wins over ``*``)."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


def _matches(if_none_match: str, tags: tuple[str, ...]) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` matches ``"x"``."""
    offered = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in offered or any(tag in offered for tag in tags)


class AssetFolder:
    """The files of ``folder`` (and ``extra`` files by name) at ``prefix``, compressed and
    cached as the module docstring says.

    Args:
        prefix: the URL path they are served under, e.g. ``/static``.
        folder: the folder whose files are served by their relative path.
        extra: more files by name, each a path or a function giving it (called when the
            file is first needed: plotly's bundle is found in the installed package).
    """

    def __init__(
        self,
        prefix: str,
        folder: Path,
        extra: Mapping[str, Path | Callable[[], Path]] | None = None,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.folder = folder.resolve()
        self.extra = dict(extra or {})

    def path_of(self, name: str) -> Path | None:
        """The file served as ``name``, or None (no such file, or a path leading outside)."""
        from keel.paths import unsafe_reason

        if name in self.extra:
            found = self.extra[name]
            return found if isinstance(found, Path) else found()
        if unsafe_reason(name) is not None:
            return None
        target = (self.folder / name).resolve()
        if not target.is_relative_to(self.folder) or not target.is_file():
            return None
        return target

    def url(self, name: str) -> str:
        """The URL of ``name`` carrying its version (cached for a year by browsers)."""
        path = self.path_of(name)
        if path is None:
            raise FileNotFoundError(f"no static file {name!r} in {self.folder}")
        return f"{self.prefix}/{name}?v={load(path).version}"

    def route(self) -> Route:
        """The GET (and HEAD) route serving the files."""
        from starlette.routing import Route

        return Route(f"{self.prefix}/{{path:path}}", self.endpoint, methods=["GET", "HEAD"])

    async def endpoint(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.exceptions import HTTPException

        path = self.path_of(request.path_params["path"])
        if path is None:
            raise HTTPException(404)
        # reading, hashing and compressing take a while the first time: not on the loop
        asset = await run_in_threadpool(load, path)
        gzipped = None
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            gzipped = await run_in_threadpool(asset.gzipped)
        return answer(request, asset, gzipped)


def answer(request: Request, asset: Asset, gzipped: bytes | None) -> Response:
    """The answer for ``asset``: ``gzipped`` when given, a 304 when the client has it."""
    from starlette.responses import Response

    versioned = request.query_params.get("v") == asset.version
    headers = {
        "Cache-Control": IMMUTABLE if versioned else REVALIDATE,
        "ETag": asset.gzip_etag if gzipped is not None else asset.etag,
    }
    if asset.compressible:
        # a cache must not hand the gzip bytes to a client that did not ask for them
        headers["Vary"] = "Accept-Encoding"
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, (asset.etag, asset.gzip_etag)):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if gzipped is not None:
        headers["Content-Encoding"] = "gzip"
        body = gzipped
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, media_type=asset.media_type, headers=headers)


@cache
def swagger_files() -> AssetFolder:
    """The vendored Swagger UI 5 files at ``/_static/swagger``."""
    return AssetFolder(SWAGGER_PREFIX, SWAGGER_UI)


def swagger_page(title: str, openapi_url: str = "/openapi.json") -> HTMLResponse:
    """The ``/docs`` page: Swagger UI on ``openapi_url``, from the vendored files only."""
    from fastapi.openapi.docs import get_swagger_ui_html

    files = swagger_files()
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=files.url("swagger-ui-bundle.js"),
        swagger_css_url=files.url("swagger-ui.css"),
        swagger_favicon_url=files.url("favicon-32x32.png"),
        # no badge from validator.swagger.io: nothing leaves the machine, the page works
        # offline and within the platform server's Content-Security-Policy
        swagger_ui_parameters={"validatorUrl": None},
    )
