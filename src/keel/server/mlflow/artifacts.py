"""The ``mlflow-artifacts`` proxy: MLflow's client moves files through it, keel stores them.

Runs (and logged models) have ``mlflow-artifacts:/…`` artifact URIs (see :mod:`.records`), so
the client uploads with ``PUT /api/2.0/mlflow-artifacts/artifacts/<path>``, lists with
``GET …/artifacts?path=<folder>`` and downloads with ``GET …/artifacts/<path>``. An upload is
streamed to a file of the server's uploads folder (:mod:`keel.server.uploads`) while it is
hashed, stored once in keel's content-addressed artifact store and recorded as the run's file
(path → sha256), exactly as keel's own client records it; a download streams the blob back.
``/api/3.0/mlflow/server-info`` tells the client that multipart and presigned transfers are
off, so every byte goes through here.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from keel.entities import ArtifactFile
from keel.errors import InvalidInput
from keel.server.deps import get_client, require
from keel.server.guard import artifact_upload
from keel.server.mlflow.protocol import (
    RESOURCE_DOES_NOT_EXIST,
    Call,
    MlflowError,
    answer,
    new_router,
    operation,
)
from keel.server.mlflow.records import (
    ExperimentIds,
    get_run,
    parse_artifact_path,
    run_artifact_uri,
)
from keel.server.uploads import request_uploads_dir, staged_upload
from keel.tracking.client import check_artifact_path

router = new_router()  # under /api/2.0
server_info_router = new_router()
SERVICE = "/mlflow-artifacts/artifacts"
CHUNK = 1 << 20


def _where(path: str) -> tuple[str, str]:
    if "//" in path.strip("/"):
        # MLflow's client never doubles a slash; ``<run>/artifacts//etc/passwd`` is an
        # absolute path in disguise, not ``etc/passwd``
        raise MlflowError(f"Invalid artifact path {path!r}: it has an empty segment ('//')")
    found = parse_artifact_path(path)
    if found is None:
        raise MlflowError(
            f"No artifact at {path!r}: keel serves <experiment>/<run id>/artifacts/<path> and "
            "<experiment>/models/m-<id>/artifacts/<path>",
            RESOURCE_DOES_NOT_EXIST,
        )
    run_id, in_run = found
    try:
        return run_id, check_artifact_path(in_run, allow_empty=True)
    except InvalidInput as exc:
        raise MlflowError(str(exc)) from None


def _children(call: Call, run_id: str, prefix: str) -> list[dict[str, Any]]:
    """The files and folders right under ``prefix`` of a run, as MLflow lists them."""
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


@operation(router, "GET", SERVICE, "viewer")
def list_artifacts(call: Call) -> dict[str, Any]:
    """The entries right under a folder (its name relative to the artifact root)."""
    path = call.args.text("path") or ""
    found = parse_artifact_path(path)
    if found is None:
        return {"files": []}
    run_id, prefix = _where(path)
    get_run(call, run_id)
    entries = _children(call, run_id, prefix)
    for entry in entries:
        entry.pop("file", None)
    return {"files": entries}


@operation(router, "GET", "/mlflow/artifacts/list", "viewer")
def list_run_artifacts(call: Call) -> dict[str, Any]:
    """A run's files and folders right under ``path`` (the tracking API's listing), with
    paths from the run's artifact root."""
    run = get_run(call, call.args.run_id())
    try:
        prefix = check_artifact_path(call.args.text("path") or "", allow_empty=True)
    except InvalidInput as exc:
        raise MlflowError(str(exc)) from None
    entries = _children(call, run.id, prefix)
    is_file = len(entries) == 1 and not entries[0]["is_dir"] and entries[0].get("file") == prefix
    for entry in entries:
        entry["path"] = prefix if is_file else "/".join(filter(None, [prefix, entry["path"]]))
        entry.pop("file", None)
    root = run_artifact_uri(ExperimentIds(call)(run.experiment_id), run.id)
    return {"root_uri": root, "files": entries}


@router.get(
    SERVICE + "/{artifact_path:path}",
    dependencies=[Depends(require("viewer"))],
    include_in_schema=False,
    name="mlflow.download_artifact",
)
def download_artifact(artifact_path: str, request: Request) -> Response:
    """One file's bytes, streamed from keel's artifact store."""
    call = Call(request)
    run_id, path = _where(artifact_path)
    get_run(call, run_id)
    match = [f for f in call.store.list_artifacts("run", run_id, path) if f.path == path]
    if not path or not match:
        raise MlflowError(f"No artifact at {artifact_path!r}", RESOURCE_DOES_NOT_EXIST)
    sha256 = match[0].sha256
    store = get_client(request).artifact_store
    local = store.local_path(sha256)
    if local is not None:
        return FileResponse(local, media_type="application/octet-stream")
    handle = store.open(sha256)

    def chunks() -> Any:
        try:
            while chunk := handle.read(CHUNK):
                yield chunk
        finally:
            handle.close()

    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(match[0].size)},
    )


@router.put(
    SERVICE + "/{artifact_path:path}",
    dependencies=[Depends(require("editor"))],
    include_in_schema=False,
    name="mlflow.upload_artifact",
)
@artifact_upload  # streamed to the store: server.max_artifact_mb
async def upload_artifact(artifact_path: str, request: Request) -> Response:
    """Store the body as a run's file (hashed while it streams to a temporary file)."""
    call = Call(request)
    run_id, path = _where(artifact_path)
    if not path:
        raise MlflowError(f"Invalid artifact path {artifact_path!r}: name a file in the run")
    await run_in_threadpool(get_run, call, run_id)
    # a file of the uploads folder, locked while this runs: a crash leaves it unlocked,
    # where keel doctor --repair and keel gc find it
    with staged_upload(request_uploads_dir(request), "mlflow-") as staged:
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
        sha256 = digest.hexdigest()
        await run_in_threadpool(get_client(request).artifact_store.put_file, staged.path, sha256)
    await run_in_threadpool(
        call.store.record_artifacts, "run", run_id, [ArtifactFile(path, sha256, size)]
    )
    return answer(None)


@operation(server_info_router, "GET", "/api/3.0/mlflow/server-info", "viewer")
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
