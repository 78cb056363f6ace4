"""MLflow's artifact routes: the ``mlflow-artifacts`` proxy, ``get-artifact`` and its kin.

**The proxy** (``/api/2.0/mlflow-artifacts/artifacts``) serves any path under its root, as
MLflow's does (``PUT``/``GET``/``DELETE …/artifacts/<path>``, list with ``GET …?path=``):

* ``<exp>/<run>/artifacts/<path>`` and ``<exp>/models/m-<id>/artifacts/<path>`` (the
  ``mlflow-artifacts:/…`` URIs of runs and logged models, see :mod:`.records`) are a keel
  run's files: an upload is streamed to a file of the server's uploads folder
  (:mod:`keel.server.uploads`) while it is hashed, stored once in keel's content-addressed
  artifact store and recorded as the run's file (path → sha256), exactly as keel's own
  client records it; a download streams the blob back. A run's files are not deleted here.
* any other path is a plain file under the **proxy root**, the folder ``mlflow-artifacts/``
  of the server's artifact store (:func:`proxy_root`; on an fsspec store such as S3 the same
  prefix, ``<store url>/mlflow-artifacts/…``, through fsspec): what MLflow keeps under its
  ``--artifacts-destination``. keel does not hash or record these files.

**Experiments' own locations.** An MLflow experiment created with an ``artifact_location``
keeps it (:func:`requested_location`: a relative path is made absolute against the server's
working folder, as MLflow's server does), and ``server.mlflow_artifact_root`` (MLflow's
``--default-artifact-root``) gives the others ``<root>/<id>``; a run's ``artifact_uri`` is
then under that location and MLflow's client reads and writes those files itself, without
the server. keel lists and serves such files only where they lie in a folder of this
machine under ``server.mlflow_artifact_root`` or the proxy root (never an arbitrary server
path a caller named), beside any files keel holds for the run.

**Downloads** answer with MLflow's headers: ``Content-Type`` from the file's name (whatever
the client asked for), ``X-Content-Type-Options: nosniff`` and ``Content-Disposition:
attachment``, so a browser never renders an artifact as a page of this server.

Also here: ``/get-artifact``, ``/model-versions/get-artifact``,
``/ajax-api/2.0/mlflow/upload-artifact``, a logged model's ``artifacts/files`` and
``artifacts/directories``, the tracking API's ``/mlflow/artifacts/list``, and
``/api/3.0/mlflow/server-info`` (multipart and presigned transfers are off, so every byte
goes through here).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, unquote, urlparse

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from keel.artifacts.local import LocalArtifactStore
from keel.artifacts.remote import FsspecArtifactStore
from keel.entities import ArtifactFile
from keel.errors import InvalidInput, NotFound
from keel.paths import unsafe_reason
from keel.server.deps import get_client, get_settings, require
from keel.server.guard import artifact_upload
from keel.server.mlflow.protocol import (
    BAD_REQUEST,
    RESOURCE_DOES_NOT_EXIST,
    Args,
    Call,
    MlflowError,
    answer,
    new_router,
    operation,
)
from keel.server.mlflow.records import (
    ExperimentIds,
    get_run,
    logged_model_run,
    logged_model_uri,
    parse_artifact_path,
    parse_source,
    source_runs,
    version_location,
)
from keel.server.uploads import request_uploads_dir, staged_upload

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from keel.entities import Run

router = new_router()  # under /api/2.0
#: routes at the server's root (``/get-artifact``, ``/ajax-api/…``, ``/api/3.0/…``)
app_router = new_router()
SERVICE = "/mlflow-artifacts/artifacts"
CHUNK = 1 << 20
#: the proxy root's folder in the server's artifact store
PROXY_FOLDER = "mlflow-artifacts"
#: MLflow's limit of the UI's upload route (its handler refuses more)
UI_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
INVALID_PATH = "Invalid path"

#: names MLflow serves as text/plain (mlflow.utils.mime_type_utils.get_text_extensions)
_TEXT_EXTENSIONS = frozenset({
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon",
    "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst",
    "ipynb", "MLmodel", "mlproject",
})  # fmt: skip
#: RFC 7230 token characters: a file name of these alone needs no quotes in a header
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def proxy_root(artifacts: str) -> Path:
    """The folder of a local artifact store (a path or ``file://`` URL) where proxied files
    that are not a run's are kept: MLflow's ``--artifacts-destination``.

    Raises:
        InvalidInput: ``artifacts`` is not a local store (a remote store keeps them under
            the same prefix, through fsspec).
    """
    scheme = urlparse(artifacts).scheme
    if scheme not in ("", "file") and not PureWindowsPath(artifacts).drive:
        raise InvalidInput(f"{artifacts!r} is not a local artifact store: no local proxy root")
    return LocalArtifactStore(artifacts).root / PROXY_FOLDER


def requested_location(value: str) -> str:
    """An experiment's requested ``artifact_location``, checked and kept as MLflow keeps it
    (a relative local path made absolute against the server's working folder).

    Raises:
        MlflowError: MLflow's refusals (fragments, params, ``runs:/``, too long).
    """
    parsed = urlparse(value)
    if parsed.fragment or parsed.params:
        raise MlflowError("'artifact_location' URL can't include fragments or params.")
    if value.startswith("runs:"):
        raise MlflowError(f"Artifact location cannot be a runs:/ URI. Given: '{value}'")
    if "\x00" in value:
        raise MlflowError("'artifact_location' must not contain a NUL character")
    if parsed.scheme in ("", "file") and not parsed.netloc:
        path = unquote(parsed.path) if parsed.scheme else value
        if not os.path.isabs(path):
            absolute = Path.cwd().joinpath(path).as_posix()
            value = f"file://{absolute}" if parsed.scheme else absolute
    if len(value) > 2048:
        raise MlflowError(
            "Invalid artifact path length. The length of the artifact path cannot be greater "
            "than 2048 characters."
        )
    return value


# --- paths -----------------------------------------------------------------------------------


def safe_path(path: str | None, *, allow_empty: bool = True) -> str:
    """A path under an artifact root, refused as MLflow refuses it (``Invalid path``) and as
    keel refuses hostile paths (:mod:`keel.paths`). ``""``/``/`` is the root itself."""
    text = path or ""
    if allow_empty and text.strip("/") == "":
        return ""
    cleaned = text.rstrip("/") if allow_empty else text
    parts = cleaned.split("/")
    if (
        "#" in cleaned
        or "\\" in cleaned
        or ".." in parts
        or cleaned.startswith("/")
        or PureWindowsPath(cleaned).drive
        or "" in parts  # ``a//b``: an absolute path in disguise, not ``a/b``
    ):
        raise MlflowError(INVALID_PATH)
    reason = unsafe_reason(cleaned)
    if reason is not None:
        raise MlflowError(f"{INVALID_PATH} {cleaned!r}: {reason}")
    return cleaned


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


# --- where proxied files are -----------------------------------------------------------------


class _Folder:
    """Plain files under a root: a local folder, or a prefix of an fsspec filesystem."""

    def __init__(
        self, local: Path | None = None, fs: AbstractFileSystem | None = None, root: str = ""
    ) -> None:
        self.local = local
        self.fs = fs
        self.root = root.rstrip("/")

    def _local_path(self, path: str) -> Path:
        assert self.local is not None
        target = self.local / path if path else self.local
        # a link inside the folder must not lead a caller out of it
        real_root = self.local.resolve()
        real = target.resolve()
        if real != real_root and not real.is_relative_to(real_root):
            raise MlflowError(INVALID_PATH)
        return target

    def _key(self, path: str) -> str:
        return _join(self.root, path)

    def entries(self, prefix: str) -> list[dict[str, Any]]:
        """The files and folders right under ``prefix`` (none if it is no folder)."""
        found: list[dict[str, Any]] = []
        if self.local is not None:
            folder = self._local_path(prefix)
            if not folder.is_dir():
                return []
            for child in sorted(folder.iterdir(), key=lambda p: p.name):
                if child.is_dir():
                    found.append({"path": child.name, "is_dir": True})
                elif child.is_file():
                    found.append(
                        {"path": child.name, "is_dir": False, "file_size": child.stat().st_size}
                    )
            return found
        assert self.fs is not None
        key = self._key(prefix)
        if not self.fs.isdir(key):
            return []
        for info in sorted(self.fs.ls(key, detail=True), key=lambda i: str(i["name"])):
            name = PurePosixPath(str(info["name"])).name
            if info.get("type") == "directory":
                found.append({"path": name, "is_dir": True})
            else:
                found.append(
                    {"path": name, "is_dir": False, "file_size": int(info.get("size") or 0)}
                )
        return found

    def file(self, path: str) -> Path | tuple[BinaryIO, int] | None:
        """A file's local path, or an open handle and its size; None if there is none."""
        if self.local is not None:
            target = self._local_path(path)
            return target if target.is_file() else None
        assert self.fs is not None
        key = self._key(path)
        if not self.fs.isfile(key):
            return None
        return self.fs.open(key, "rb"), int(self.fs.size(key) or 0)

    def write(self, path: str, source: Path) -> None:
        """Put a file at ``path`` (replacing one there), visible only once complete."""
        if self.local is not None:
            target = self._local_path(path)
            if target.is_dir():
                raise MlflowError(f"{path!r} is a folder of the artifact root, not a file")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise MlflowError(f"{path!r}: a part of it is a file, not a folder") from None
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                shutil.copyfile(source, partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            return
        assert self.fs is not None
        self.fs.put_file(str(source), self._key(path))

    def delete(self, path: str) -> None:
        """Remove a file or a folder (nothing there: nothing to do, as MLflow's)."""
        if self.local is not None:
            target = self._local_path(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            return
        assert self.fs is not None
        key = self._key(path)
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)


def _proxy_folder(request: Request) -> _Folder:
    """The proxy root of this server's artifact store (made once per app)."""
    state = request.app.state
    found = getattr(state, "mlflow_proxy_folder", None)
    if found is None:
        store = get_client(request).artifact_store
        if isinstance(store, LocalArtifactStore):
            found = _Folder(local=store.root / PROXY_FOLDER)
        elif isinstance(store, FsspecArtifactStore):
            found = _Folder(fs=store.fs, root=_join(store.root, PROXY_FOLDER))
        else:
            raise MlflowError(
                "this keel server's artifact store is another server: MLflow's artifact proxy "
                "keeps only runs' files here",
                BAD_REQUEST,
            )
        state.mlflow_proxy_folder = found
    return found


def _readable_roots(request: Request) -> list[Path]:
    """The local folders whose files keel may serve for runs whose artifact URI names them."""
    roots = []
    configured = get_settings(request).mlflow_artifact_root
    local = _local_path_of(configured) if configured else None
    if local is not None:
        roots.append(local.resolve())
    store = get_client(request).artifact_store
    if isinstance(store, LocalArtifactStore):
        roots.append((store.root / PROXY_FOLDER).resolve())
    return roots


def _local_path_of(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and os.path.isabs(uri):
        return Path(uri)
    return None


def _local_run_folder(request: Request, artifact_uri: str) -> _Folder | None:
    """A run's artifact folder on this machine, if keel may read it (see the module)."""
    folder = _local_path_of(artifact_uri)
    if folder is None:
        return None
    real = folder.resolve()
    if any(real.is_relative_to(root) for root in _readable_roots(request)):
        return _Folder(local=folder)
    return None


def _proxied_path(uri: str) -> str | None:
    """The path under the proxy root an ``mlflow-artifacts:``/``http(s)://…`` URI names."""
    parsed = urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        return unquote(parsed.path).strip("/")
    marker = "/api/2.0" + SERVICE
    if parsed.scheme in ("http", "https") and marker in parsed.path:
        return unquote(parsed.path.split(marker, 1)[1]).strip("/")
    return None


# --- answers ---------------------------------------------------------------------------------


def _mime_type(name: str) -> str:
    """MLflow's ``_guess_mime_type``: text for its text extensions, else by the name."""
    extension = os.path.splitext(name)[1].replace(".", "") or name  # MLmodel: no extension
    if extension in _TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _encoding = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _disposition(name: str) -> str:
    """``attachment; filename=…`` as MLflow writes it (RFC 6266, RFC 5987 for non-ASCII)."""
    if not name.isascii():
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        quoted = quote(name, safe="!#$&+-.^_`|~")
        shown = _header_value(fallback or "download")
        return f"attachment; filename={shown}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_header_value(name)}"


def _header_value(value: str) -> str:
    if value and set(value) <= _TOKEN:
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _headers(name: str) -> dict[str, str]:
    return {
        # given whole: Starlette would add "; charset=utf-8" to a text type (MLflow does not)
        "Content-Type": _mime_type(name),
        "Content-Disposition": _disposition(name),
        "X-Content-Type-Options": "nosniff",
    }


def _send(name: str, found: Path | tuple[BinaryIO, int]) -> Response:
    """A file as an attachment (``name``: the artifact's path; its last part is shown)."""
    shown = PurePosixPath(name).name
    media_type = _mime_type(shown)
    if isinstance(found, Path):
        return FileResponse(found, media_type=media_type, headers=_headers(shown))
    handle, size = found

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := handle.read(CHUNK):
                yield chunk
        finally:
            handle.close()

    headers = {**_headers(shown), "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


def _missing(path: str) -> MlflowError:
    return MlflowError(f"No artifact at {path!r}", RESOURCE_DOES_NOT_EXIST)


# --- a run's files ---------------------------------------------------------------------------


def _where(path: str) -> tuple[str, str] | None:
    """``(run id, path in the run)`` of a proxy path naming a run's file, else None."""
    found = parse_artifact_path(path)
    if found is None:
        return None
    run_id, in_run = found
    return run_id, safe_path(in_run)


def _keel_children(call: Call, run_id: str, prefix: str) -> list[dict[str, Any]]:
    """The files and folders keel holds right under ``prefix`` of a run, as MLflow lists
    them (a ``prefix`` naming a file lists that file, with ``file`` set)."""
    files = call.store.list_artifacts("run", run_id, prefix)
    if len(files) == 1 and files[0].path == prefix and prefix:  # a file, not a folder
        name = PurePosixPath(prefix).name
        return [{"path": name, "is_dir": False, "file_size": files[0].size, "file": prefix}]
    entries: dict[str, dict[str, Any]] = {}
    for f in files:
        rest = f.path[len(prefix) + 1 :] if prefix else f.path
        head, sep, _tail = rest.partition("/")
        if sep:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": f.size}
    return [entries[name] for name in sorted(entries)]


def _run_file(call: Call, run_id: str, path: str) -> tuple[BinaryIO, int] | Path | None:
    """A file keel holds for a run: its blob's local path, or an open handle and size."""
    if not path:
        return None
    match = [f for f in call.store.list_artifacts("run", run_id, path) if f.path == path]
    if not match:
        return None
    store = get_client(call.request).artifact_store
    local = store.local_path(match[0].sha256)
    if local is not None:
        return Path(local)
    return store.open(match[0].sha256), match[0].size


def _run_root(call: Call, run: Run, ids: ExperimentIds | None = None) -> str:
    return f"{(ids or ExperimentIds(call)).location(run.experiment_id)}/{run.id}/artifacts"


def _listing(call: Call, run: Run, prefix: str, root: str) -> list[dict[str, Any]]:
    """A run's entries right under ``prefix`` (paths from the run's root, as the tracking
    API lists them): keel's, and those in its local folder where keel may read it."""
    entries = _keel_children(call, run.id, prefix)
    if len(entries) == 1 and entries[0].get("file") == prefix:  # a file
        return [{"path": prefix, "is_dir": False, "file_size": entries[0]["file_size"]}]
    folder = _local_run_folder(call.request, root)
    if folder is not None:
        known = {e["path"] for e in entries}
        entries += [e for e in folder.entries(prefix) if e["path"] not in known]
        entries.sort(key=lambda e: e["path"])
    for entry in entries:
        entry["path"] = _join(prefix, entry["path"])
        entry.pop("file", None)
    return entries


def _serve_run_file(call: Call, run: Run, path: str, root: str) -> Response:
    found = _run_file(call, run.id, path)
    if found is None and path:
        folder = _local_run_folder(call.request, root)
        found = folder.file(path) if folder is not None else None
    if found is None:
        raise _missing(path)
    return _send(path, found)


# --- the proxy -------------------------------------------------------------------------------


@operation(router, "GET", SERVICE, "viewer")
def list_artifacts(call: Call) -> dict[str, Any]:
    """The entries right under a folder of the proxy root (names relative to it)."""
    given = call.args.text("path") or ""
    # MLflow's client lists ``<run root>/.`` when asked for a run's "." (its whole folder)
    path = safe_path("/".join(p for p in given.split("/") if p != "."))
    found = _where(path)
    if found is not None:
        run_id, prefix = found
        get_run(call, run_id)
        entries = _keel_children(call, run_id, prefix)
        if len(entries) == 1 and entries[0].get("file") == prefix:
            entries = []  # MLflow lists nothing under a file
    else:
        entries = _proxy_folder(call.request).entries(path)
    for entry in entries:
        entry.pop("file", None)
    return {"files": entries}


@router.get(
    SERVICE + "/{artifact_path:path}",
    dependencies=[Depends(require("viewer"))],
    include_in_schema=False,
    name="mlflow.download_artifact",
)
def download_artifact(artifact_path: str, request: Request) -> Response:
    """One file's bytes: a run's from keel's artifact store, any other from the proxy root."""
    call = Call(request)
    path = safe_path(artifact_path, allow_empty=False)
    found = _where(path)
    if found is None:
        file = _proxy_folder(request).file(path)
        if file is None:
            raise _missing(artifact_path)
        return _send(path, file)
    run_id, in_run = found
    get_run(call, run_id)
    blob = _run_file(call, run_id, in_run)
    if blob is None:
        raise _missing(artifact_path)
    return _send(in_run, blob)


async def _stage(request: Request, staged: Any) -> tuple[str, int]:
    """Stream the request's body into a staged upload; its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    out = staged.handle
    pending = bytearray()
    async for piece in request.stream():
        pending += piece
        if len(pending) >= CHUNK:
            digest.update(pending)
            size += len(pending)
            await run_in_threadpool(out.write, bytes(pending))
            pending.clear()
    digest.update(pending)
    size += len(pending)
    out.write(pending)
    out.flush()  # the store reads the file by its name next
    return digest.hexdigest(), size


async def _store_run_file(
    request: Request, call: Call, run_id: str, path: str, max_bytes: int | None = None
) -> None:
    """Store the request's body as a run's file (hashed while it streams).

    Args:
        max_bytes: refuse an empty body or one over this many bytes (MLflow's UI route).
    """
    # a file of the uploads folder, locked while this runs: a crash leaves it unlocked,
    # where keel doctor --repair and keel gc find it
    with staged_upload(request_uploads_dir(request), "mlflow-") as staged:
        sha256, size = await _stage(request, staged)
        if max_bytes is not None and size == 0:
            raise MlflowError("Request must specify data.")
        if max_bytes is not None and size > max_bytes:
            raise MlflowError("Artifact size is too large. Max size is 10MB.")
        await run_in_threadpool(get_client(request).artifact_store.put_file, staged.path, sha256)
    await run_in_threadpool(
        call.store.record_artifacts, "run", run_id, [ArtifactFile(path, sha256, size)]
    )


@router.put(
    SERVICE + "/{artifact_path:path}",
    dependencies=[Depends(require("editor"))],
    include_in_schema=False,
    name="mlflow.upload_artifact",
)
@artifact_upload  # streamed to the store: server.max_artifact_mb
async def upload_artifact(artifact_path: str, request: Request) -> Response:
    """Store the body: as a run's file, or as a plain file of the proxy root."""
    call = Call(request)
    path = safe_path(artifact_path, allow_empty=False)
    found = _where(path)
    if found is None:
        folder = _proxy_folder(request)
        with staged_upload(request_uploads_dir(request), "mlflow-") as staged:
            await _stage(request, staged)
            await run_in_threadpool(folder.write, path, staged.path)
        return answer(None)
    run_id, in_run = found
    if not in_run:
        raise MlflowError(f"Invalid artifact path {artifact_path!r}: name a file in the run")
    await run_in_threadpool(get_run, call, run_id)
    await _store_run_file(request, call, run_id, in_run)
    return answer(None)


@router.delete(
    SERVICE + "/{artifact_path:path}",
    dependencies=[Depends(require("editor"))],
    include_in_schema=False,
    name="mlflow.delete_artifact",
)
def delete_artifact(artifact_path: str, request: Request) -> Response:
    """Delete a plain file or folder of the proxy root (a run's files stay: keel's records
    of a run are deleted with the run)."""
    path = safe_path(artifact_path, allow_empty=False)
    if _where(path) is not None:
        raise MlflowError(
            f"keel does not delete a run's files one by one ({artifact_path!r}): delete the run"
        )
    _proxy_folder(request).delete(path)
    return answer(None)


# --- the tracking API's listing and the UI's routes ------------------------------------------


@operation(router, "GET", "/mlflow/artifacts/list", "viewer")
def list_run_artifacts(call: Call) -> dict[str, Any]:
    """A run's files and folders right under ``path`` (the tracking API's listing), with
    paths from the run's artifact root."""
    run = get_run(call, call.args.run_id())
    prefix = safe_path(call.args.text("path"))
    root = _run_root(call, run)
    return {"root_uri": root, "files": _listing(call, run, prefix, root)}


def _query_call(request: Request) -> Call:
    """A GET request of a file route, its query string as its arguments."""
    return Call(request, Args(dict(request.query_params)))


def _run_of_query(call: Call) -> Run:
    run_id = call.args.text("run_id") or call.args.text("run_uuid")
    if not run_id:
        raise MlflowError("Request must specify run_id.")
    return get_run(call, run_id)


@app_router.get(
    "/get-artifact",
    dependencies=[Depends(require("viewer"))],
    include_in_schema=False,
    name="mlflow.get_artifact",
)
def get_artifact(request: Request) -> Response:
    """A run's file (MLflow's UI route): ``?run_id=…&path=…``."""
    call = _query_call(request)
    path = safe_path(call.args.text("path", required=True), allow_empty=False)
    run = _run_of_query(call)
    return _serve_run_file(call, run, path, _run_root(call, run))


def _model_version_artifact(request: Request) -> Response:
    """A registered model version's file: ``?name=…&version=…&path=…``."""
    call = _query_call(request)
    path = safe_path(call.args.text("path", required=True), allow_empty=False)
    name = call.args.text("name", required=True)
    version = str(call.args.text("version", required=True))
    if not version.isdigit():
        raise MlflowError(f"Invalid model version {version!r}: a version is a number")
    try:
        mv = call.store.get_model_version(call.project, name, int(version))
    except NotFound:
        raise MlflowError(
            f"Model Version (name={name}, version={version}) not found", RESOURCE_DOES_NOT_EXIST
        ) from None
    source, uri, _model_id = version_location(mv, source_runs(call, [mv]), ExperimentIds(call))
    for where in (uri, source):
        named = parse_source(where)
        if named is not None:
            run_id, in_run = named
            blob = _run_file(call, run_id, _join(in_run, path))
            if blob is not None:
                return _send(path, blob)
        proxied = _proxied_path(where)
        if proxied is not None:
            file = _proxy_folder(request).file(_join(safe_path(proxied), path))
            if file is not None:
                return _send(path, file)
        folder = _local_run_folder(request, where)
        if folder is not None and (file := folder.file(path)) is not None:
            return _send(path, file)
    raise _missing(path)


for _path in ("/model-versions/get-artifact", "//model-versions/get-artifact"):
    # MLflow's server (werkzeug) merges doubled slashes; its tests and clients send them
    app_router.add_api_route(
        _path,
        _model_version_artifact,
        methods=["GET"],
        dependencies=[Depends(require("viewer"))],
        include_in_schema=False,
        name="mlflow.get_model_version_artifact",
    )


@app_router.post(
    "/ajax-api/2.0/mlflow/upload-artifact",
    dependencies=[Depends(require("editor"))],
    include_in_schema=False,
    name="mlflow.ui_upload_artifact",
)
@artifact_upload  # streamed to the store: server.max_artifact_mb (MLflow's 10 MB, below)
async def ui_upload_artifact(request: Request) -> Response:
    """Store the body as a run's file (MLflow's UI route): ``?run_uuid=…&path=…``."""
    call = Call(request)
    query = request.query_params
    run_id = query.get("run_uuid")
    if not run_id:
        raise MlflowError("Request must specify run_uuid.")
    if not query.get("path"):
        raise MlflowError("Request must specify path.")
    path = safe_path(query["path"], allow_empty=False)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > UI_UPLOAD_MAX_BYTES:
        raise MlflowError("Artifact size is too large. Max size is 10MB.")  # before the body
    await run_in_threadpool(get_run, call, run_id)
    await _store_run_file(request, call, run_id, path, max_bytes=UI_UPLOAD_MAX_BYTES)
    return answer(None)


# --- logged models ---------------------------------------------------------------------------


@app_router.get(
    "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
    dependencies=[Depends(require("viewer"))],
    include_in_schema=False,
    name="mlflow.get_logged_model_artifact",
)
def get_logged_model_artifact(model_id: str, request: Request) -> Response:
    """A logged model's file: ``?artifact_file_path=…``."""
    call = _query_call(request)
    given = call.args.text("artifact_file_path")
    if not given:
        raise MlflowError(
            'Request must include the "artifact_file_path" query parameter.', BAD_REQUEST
        )
    path = safe_path(given, allow_empty=False)
    run = logged_model_run(call, model_id)
    blob = _run_file(call, run.id, _join("model", path))
    if blob is None:
        raise _missing(path)
    return _send(path, blob)


@operation(router, "GET", "/mlflow/logged-models/{model_id}/artifacts/directories", "viewer")
def list_logged_model_artifacts(call: Call) -> dict[str, Any]:
    """A logged model's files and folders right under ``artifact_directory_path``."""
    model_id = call.request.path_params["model_id"]
    prefix = safe_path(call.args.text("artifact_directory_path"))
    run = logged_model_run(call, model_id)
    entries = _keel_children(call, run.id, _join("model", prefix))
    if len(entries) == 1 and "file" in entries[0]:
        entries = [{"path": prefix, "is_dir": False, "file_size": entries[0]["file_size"]}]
    else:
        for entry in entries:
            entry["path"] = _join(prefix, entry["path"])
    ids = ExperimentIds(call)
    return {"root_uri": logged_model_uri(ids(run.experiment_id), run.id), "files": entries}


@operation(app_router, "GET", "/api/3.0/mlflow/server-info", "viewer")
def server_info(call: Call) -> dict[str, Any]:
    """What this server offers MLflow's client: proxied artifacts, no multipart transfers."""
    return {
        "store_type": "keel",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {},
    }


#: the name this router had (keel's fuzz tests walk its routes)
server_info_router = app_router
