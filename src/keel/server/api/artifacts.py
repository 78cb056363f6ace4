"""Routes of artifacts: which files a run, dataset or model version has (path → sha256),
the blobs themselves (streamed both ways, checked against their sha256), and the
housekeeping ``keel gc`` needs (admin only).

An upload is streamed to a file of the server's uploads folder while it is hashed (see
:mod:`keel.server.uploads`), so a blob of any size costs the server a fixed amount of memory,
and a body that does not hash to the sha256 in its URL is refused before anything is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import BinaryIO, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import Field

from keel.artifacts.base import BlobInfo, check_sha256
from keel.entities import ArtifactFile
from keel.errors import InvalidInput, NotFound
from keel.server.api.codec import KeelJSON, no_content, reply, returns
from keel.server.api.common import Body, artifacts, metadata
from keel.server.deps import require
from keel.server.guard import GuardedRoute, artifact_upload
from keel.server.uploads import remove_partial_uploads, request_uploads_dir, staged_upload

router = APIRouter(route_class=GuardedRoute, tags=["artifacts"], default_response_class=KeelJSON)

OwnerKind = Literal["run", "dataset", "model_version"]
CHUNK = 1 << 20
BLOB_INFO_SCHEMA = {
    "type": "object",
    "properties": {
        "sha256": {"type": "string"},
        "size": {"type": "integer"},
        "uploaded": {"type": "boolean", "description": "false: the blob was already stored"},
    },
}
BINARY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}


class FilesBody(Body):
    """Files to record for an owner (their blobs must be uploaded first)."""

    files: list[ArtifactFile] = Field(description="path in the owner, sha256 and size of each")


class PartialsBody(Body):
    """Which leftovers of interrupted uploads to remove."""

    older_than_seconds: float = Field(3600, ge=0, description="spare younger ones (in flight)")


# --- artifact records ------------------------------------------------------------------------


@router.get(
    "/artifacts/{owner_kind}/{owner_id}",
    dependencies=[Depends(require("viewer"))],
    responses=returns(ArtifactFile, many=True),
    summary="List the files of a run, dataset or model version",
)
def list_artifacts(
    owner_kind: OwnerKind,
    owner_id: str,
    request: Request,
    prefix: str = Query("", description="only files at or under this path"),
) -> KeelJSON:
    return reply(metadata(request).list_artifacts(owner_kind, owner_id, prefix))


@router.post(
    "/artifacts/{owner_kind}/{owner_id}",
    dependencies=[Depends(require("editor"))],
    status_code=204,
    response_class=Response,
    summary="Record files of a run, dataset or model version",
)
def record_artifacts(
    owner_kind: OwnerKind,
    owner_id: str,
    body: FilesBody,
    request: Request,
    replace: str | None = Query(
        None,
        description="a run's path whose files (a file or a folder) become exactly these",
    ),
) -> Response:
    """Record (or re-point) files at their paths; the blobs are uploaded separately."""
    if replace is not None:
        if owner_kind != "run":
            raise InvalidInput(f"replace= is for a run's files, not a {owner_kind}'s")
        metadata(request).replace_artifacts(owner_id, replace, body.files)
    else:
        metadata(request).record_artifacts(owner_kind, owner_id, body.files)
    return no_content()


# --- blobs -----------------------------------------------------------------------------------


@router.get(
    "/blobs",
    dependencies=[Depends(require("admin"))],
    responses=returns(schema={"type": "array", "items": {"type": "string"}}),
    summary="List every stored blob (for garbage collection)",
)
def list_blobs(request: Request) -> KeelJSON:
    return reply(list(artifacts(request).iter_blobs()))


@router.put(
    "/blobs/{sha256}",
    dependencies=[Depends(require("editor"))],
    responses={
        **returns(schema=BLOB_INFO_SCHEMA, status=201, description="stored"),
        **returns(schema=BLOB_INFO_SCHEMA, description="already stored"),
    },
    openapi_extra={"requestBody": {"required": True, **BINARY}},
    summary="Upload a blob (streamed)",
)
@artifact_upload  # streamed to the store: server.max_artifact_mb
async def upload_blob(sha256: str, request: Request) -> KeelJSON:
    """Store the request body as the blob ``sha256``; 422 if the bytes hash to another."""
    check_sha256(sha256)
    store = artifacts(request)
    # a file of the uploads folder, locked while this runs: a crash leaves it unlocked,
    # where keel doctor --repair and keel gc find it
    with staged_upload(request_uploads_dir(request), "blob-") as staged:
        actual = await _receive(request, staged.handle)
        if actual != sha256:
            return KeelJSON(
                {"message": f"the uploaded bytes hash to {actual}, not {sha256}: upload again"},
                status_code=422,
            )
        info: BlobInfo = await run_in_threadpool(store.put_file, staged.path, sha256)
    return _blob_reply(info, 201 if info.uploaded else 200)


async def _receive(request: Request, out: BinaryIO) -> str:
    """Write the request body to ``out`` while hashing it; return its sha256.

    The body arrives in small pieces; they are gathered into 1 MiB writes done in a worker
    thread, so a slow disk never stalls the event loop.
    """
    digest = hashlib.sha256()
    pending = bytearray()

    def flush(data: bytes) -> None:
        digest.update(data)
        out.write(data)

    async for piece in request.stream():
        pending += piece
        if len(pending) >= CHUNK:
            await run_in_threadpool(flush, bytes(pending))
            pending.clear()
    if pending:
        await run_in_threadpool(flush, bytes(pending))
    out.flush()  # the store reads the file by its name next
    return digest.hexdigest()


@router.post(
    "/blobs/{sha256}/reuse",
    dependencies=[Depends(require("editor"))],
    responses=returns(schema=BLOB_INFO_SCHEMA, description="stored already (404: upload it)"),
    summary="Reuse a stored blob instead of uploading it",
)
def reuse_blob(sha256: str, request: Request) -> KeelJSON:
    """Claim an existing blob for a new record: its time is refreshed so that ``keel gc``
    spares it until the record is written. 404 if it is not stored (then upload it)."""
    check_sha256(sha256)
    store = artifacts(request)
    local = store.local_path(sha256)
    if local is not None:
        # storing a blob's own file again only refreshes its time (no copy)
        return _blob_reply(store.put_file(local, sha256))
    if not store.exists(sha256):
        raise NotFound(f"blob {sha256} is not stored: upload it")
    return _blob_reply(BlobInfo(sha256, store.size(sha256), uploaded=False))


@router.get(
    "/blobs/{sha256}",
    dependencies=[Depends(require("viewer"))],
    response_class=Response,
    responses={200: {"description": "the blob's bytes", **BINARY}},
    summary="Download a blob (streamed)",
)
def download_blob(sha256: str, request: Request) -> Response:
    check_sha256(sha256)
    store = artifacts(request)
    # a blob never changes: any cache may keep it forever under its hash
    headers = {"ETag": f'"{sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    local = store.local_path(sha256)
    if local is not None:
        return FileResponse(local, media_type="application/octet-stream", headers=headers)
    if not store.exists(sha256):
        raise NotFound(f"blob {sha256} is not stored")
    size = store.size(sha256)
    return StreamingResponse(
        _chunks(store.open(sha256)),
        media_type="application/octet-stream",
        headers={**headers, "Content-Length": str(size)},
    )


def _chunks(fh: object) -> Iterator[bytes]:
    try:
        while chunk := fh.read(CHUNK):  # type: ignore[attr-defined]
            yield chunk
    finally:
        fh.close()  # type: ignore[attr-defined]


@router.get(
    "/blobs/{sha256}/info",
    dependencies=[Depends(require("viewer"))],
    responses=returns(
        schema={
            "type": "object",
            "properties": {
                "sha256": {"type": "string"},
                "size": {"type": "integer"},
                "modified": {"type": ["number", "null"], "description": "POSIX time"},
            },
        }
    ),
    summary="Size and time of a blob",
)
def blob_info(sha256: str, request: Request) -> KeelJSON:
    check_sha256(sha256)
    store = artifacts(request)
    if not store.exists(sha256):
        raise NotFound(f"blob {sha256} is not stored")
    return reply({"sha256": sha256, "size": store.size(sha256), "modified": store.modified(sha256)})


@router.delete(
    "/blobs/{sha256}",
    dependencies=[Depends(require("admin"))],
    status_code=204,
    response_class=Response,
    summary="Delete a blob (garbage collection)",
)
def delete_blob(sha256: str, request: Request) -> Response:
    artifacts(request).delete(check_sha256(sha256))
    return no_content()


def _blob_reply(info: BlobInfo, status: int = 200) -> KeelJSON:
    return reply({"sha256": info.sha256, "size": info.size, "uploaded": info.uploaded}, status)


# --- garbage collection ----------------------------------------------------------------------


@router.get(
    "/gc/referenced-blobs",
    dependencies=[Depends(require("admin"))],
    responses=returns(schema={"type": "array", "items": {"type": "string"}}),
    summary="Every blob some record refers to",
)
def referenced_blobs(request: Request) -> KeelJSON:
    return reply(sorted(metadata(request).referenced_blobs()))


@router.post(
    "/gc/purge-deleted-runs",
    dependencies=[Depends(require("admin"))],
    responses=returns(
        schema={
            "type": "object",
            "properties": {
                "purged": {"type": "array", "items": {"type": "string"}},
                "kept": {"type": "array", "items": {"type": "string"}},
            },
        },
        description="purged run ids, and deleted runs kept because something refers to them",
    ),
    summary="Purge runs marked deleted",
)
def purge_deleted_runs(request: Request) -> KeelJSON:
    purged, kept = metadata(request).purge_deleted_runs()
    return reply({"purged": purged, "kept": kept})


@router.post(
    "/gc/remove-partials",
    dependencies=[Depends(require("admin"))],
    responses=returns(
        schema={"type": "object", "properties": {"removed": {"type": "integer"}}},
        description="how many leftovers were removed",
    ),
    summary="Remove leftovers of interrupted uploads",
)
def remove_partials(body: PartialsBody, request: Request) -> KeelJSON:
    """The artifact store's temporary files, and the files of this server's uploads folder
    no upload holds (left by a replica killed mid-upload), older than ``older_than_seconds``."""
    removed = artifacts(request).remove_partials(body.older_than_seconds)
    removed += len(remove_partial_uploads(request_uploads_dir(request), body.older_than_seconds))
    return reply({"removed": removed})
