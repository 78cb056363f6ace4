"""The artifact store at any fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://…``).

This module owns :class:`FsspecArtifactStore`. fsspec (and the protocol's package, e.g.
s3fs) is imported only when a store is constructed, so ``import keel.artifacts`` stays light.

Blobs live at ``<url>/blobs/<sha[:2]>/<sha>``. A write checks whether the blob exists and, if
not, uploads it. On object stores (S3, GCS, Azure…) a single PUT makes the object visible
atomically, so the blob is uploaded straight to its key. Elsewhere (memory, SFTP, …) it is
uploaded to ``<url>/tmp/<uuid>.part``, its size checked, then moved to its key, so a failed
upload never leaves a partial blob.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from keel.artifacts.base import (
    ArtifactStore,
    BlobInfo,
    blob_key,
    redact_url,
    sha256_of_file,
)
from keel.errors import ArtifactError, InvalidInput

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["FsspecArtifactStore"]

# Protocols whose writes become visible atomically, all at once, when complete.
ATOMIC_PUT_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "r2"}
)
_PARTIAL_SUFFIX = ".part"


class FsspecArtifactStore(ArtifactStore):
    """Blobs at any fsspec URL.

    Args:
        url: the root, e.g. ``s3://bucket/prefix``.
        storage_options: passed to the fsspec filesystem, e.g. for S3
            ``{"client_kwargs": {"endpoint_url": ...}, "key": ..., "secret": ...}``.

    Raises:
        InvalidInput: fsspec does not know the URL's protocol.
        ArtifactError: the protocol's package (e.g. s3fs) is not installed.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            from fsspec.core import url_to_fs

            fs, root = url_to_fs(url, **(storage_options or {}))
        except ImportError as exc:
            raise ArtifactError(
                f"artifact store {redact_url(url)} needs a package that is not installed: {exc}"
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"artifact store {redact_url(url)}: {exc}") from exc
        self.fs: AbstractFileSystem = fs
        self.root: str = root.rstrip("/")
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        self.atomic_put = any(p in ATOMIC_PUT_PROTOCOLS for p in protocols)

    # --------------------------------------------------------------------- layout

    def _join(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _blob(self, sha256: str) -> str:
        return self._join(blob_key(sha256))

    def _info(self, path: str) -> dict[str, Any] | None:
        """The object's info, or None when it does not exist (other errors propagate)."""
        try:
            return self.fs.info(path)
        except FileNotFoundError:
            return None

    # ---------------------------------------------------------------------- writes

    def _put_file(self, path: Path, sha256: str | None) -> BlobInfo:
        if sha256 is None:
            sha256, size = sha256_of_file(path)
        else:
            size = path.stat().st_size
        if self._info(self._blob(sha256)) is not None:
            return BlobInfo(sha256, size, uploaded=False)
        self._upload(lambda dest: self.fs.put_file(str(path), dest), sha256, size)
        return BlobInfo(sha256, size, uploaded=True)

    def _put_bytes(self, data: bytes, sha256: str) -> BlobInfo:
        if self._info(self._blob(sha256)) is not None:
            return BlobInfo(sha256, len(data), uploaded=False)
        self._upload(lambda dest: self.fs.pipe_file(dest, data), sha256, len(data))
        return BlobInfo(sha256, len(data), uploaded=True)

    def _upload(self, write: Callable[[str], object], sha256: str, size: int) -> None:
        """Write the blob so that it becomes visible only when complete."""
        blob = self._blob(sha256)
        if self.atomic_put:
            write(blob)
            return
        tmp = self._join(f"tmp/{uuid.uuid4().hex}{_PARTIAL_SUFFIX}")
        try:
            write(tmp)
            written = self.fs.size(tmp)
            if written != size:
                raise ArtifactError(
                    f"upload of blob {sha256} to artifact store {redact_url(self.url)} was "
                    f"incomplete: {written} of {size} bytes"
                )
            self.fs.makedirs(blob.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(tmp, blob)
        finally:
            self._remove_quietly(tmp)

    def _remove_quietly(self, path: str) -> bool:
        try:
            if self._info(path) is None:
                return False
            self.fs.rm_file(path)
        except Exception:
            return False
        return True

    def _delete(self, sha256: str) -> None:
        blob = self._blob(sha256)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(blob)
        self.fs.invalidate_cache(blob)

    # ----------------------------------------------------------------------- reads

    def _exists(self, sha256: str) -> bool:
        return self._info(self._blob(sha256)) is not None

    def _size(self, sha256: str) -> int:
        info = self.fs.info(self._blob(sha256))
        return int(info["size"])

    def _modified(self, sha256: str) -> float | None:
        try:
            return self.fs.modified(self._blob(sha256)).timestamp()
        except (NotImplementedError, FileNotFoundError):
            return None

    def _get_file(self, sha256: str, dest: Path) -> None:
        self.fs.get_file(self._blob(sha256), str(dest))

    def _open(self, sha256: str) -> BinaryIO:
        return self.fs.open(self._blob(sha256), "rb")

    def _iter_blobs(self) -> Iterator[str]:
        for path in self._find("blobs"):
            parts = path.rstrip("/").rsplit("/", 2)
            if len(parts) == 3 and parts[2].startswith(parts[1]):
                yield parts[2]

    def _find(self, key: str) -> list[str]:
        """Every file under ``key``, listed afresh (the listing cache is dropped after)."""
        folder = self._join(key)
        try:
            found = sorted(self.fs.find(folder))
        except FileNotFoundError:
            found = []
        self.fs.invalidate_cache(folder)
        return found

    # -------------------------------------------------------------------- partials

    def _iter_partials(self) -> Iterator[str]:
        for path in self._find("tmp"):
            if path.endswith(_PARTIAL_SUFFIX):
                yield self.fs.unstrip_protocol(path)

    def _remove_partials(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        for path in self._find("tmp"):
            if not path.endswith(_PARTIAL_SUFFIX):
                continue
            try:
                modified: float | None = self.fs.modified(path).timestamp()
            except NotImplementedError:
                modified = None
            except FileNotFoundError:
                continue
            old = modified <= cutoff if modified is not None else older_than_seconds == 0
            if old and self._remove_quietly(path):
                removed += 1
        return removed
