"""The artifact store in a local (or mounted) folder.

This module owns :class:`LocalArtifactStore`: blobs as read-only files under
``<root>/blobs/<sha[:2]>/<sha>``, written with plain ``os`` calls (faster than fsspec for a
local disk). A write copies into ``<root>/tmp/<uuid>.part`` on the same filesystem, hashing in
the same pass, fsyncs, then publishes the file under its hash with a hardlink (which fails if
the blob exists, so an existing blob is never rewritten) or, where hardlinks are not
supported, ``os.replace``. Readers therefore only ever see complete blobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from keel.artifacts.base import (
    _CHUNK,
    ArtifactStore,
    BlobInfo,
    _remove_quietly,
    blob_key,
)
from keel.errors import IntegrityError

__all__ = ["LocalArtifactStore"]

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
_PARTIAL_SUFFIX = ".part"


class LocalArtifactStore(ArtifactStore):
    """Blobs in a folder on this machine (or a mounted network filesystem).

    The folder is created on the first write; the constructor does no I/O.

    Args:
        root: the folder (a path, or a ``file://`` URL).
    """

    def __init__(self, root: Path | str) -> None:
        self.url = str(root)
        text = str(root)
        if text.startswith("file://"):
            text = text[len("file://") :]
        self.root = Path(os.path.abspath(os.path.expanduser(text)))

    # --------------------------------------------------------------------- layout

    def _blob_path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    @property
    def _tmp_dir(self) -> Path:
        return self.root / "tmp"

    def _new_partial(self) -> Path:
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        return self._tmp_dir / f"{uuid.uuid4().hex}{_PARTIAL_SUFFIX}"

    # ---------------------------------------------------------------------- writes

    def _put_file(self, path: Path, sha256: str | None) -> BlobInfo:
        if sha256 is not None:
            final = self._blob_path(sha256)
            with contextlib.suppress(FileNotFoundError):
                return _reused(final, sha256)
        tmp = self._new_partial()
        try:
            with open(path, "rb") as src, open(tmp, "xb") as out:
                actual, size = _copy_and_hash(src, out)
                out.flush()
                os.fsync(out.fileno())
            if sha256 is not None and actual != sha256:
                raise IntegrityError(
                    f"{path} changed while being stored: its content hashes to {actual}, "
                    f"not {sha256}"
                )
            return self._publish(tmp, actual, size)
        finally:
            _remove_quietly(tmp)

    def _put_bytes(self, data: bytes, sha256: str) -> BlobInfo:
        if self._blob_path(sha256).is_file():
            return _reused(self._blob_path(sha256), sha256)
        tmp = self._new_partial()
        try:
            with open(tmp, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return self._publish(tmp, sha256, len(data))
        finally:
            _remove_quietly(tmp)

    def _publish(self, tmp: Path, sha256: str, size: int) -> BlobInfo:
        """Give the complete temporary file its blob name, unless that blob exists."""
        final = self._blob_path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, _READ_ONLY)
        try:
            os.link(tmp, final)  # fails if the blob exists: never rewritten
        except FileExistsError:
            return _reused(final, sha256)
        except OSError:  # no hardlinks on this filesystem
            if final.exists():
                return _reused(final, sha256)
            os.replace(tmp, final)
        _fsync_dir(final.parent)
        return BlobInfo(sha256, size, uploaded=True)

    def _delete(self, sha256: str) -> None:
        path = self._blob_path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except PermissionError:  # Windows refuses to delete read-only files
            os.chmod(path, _READ_ONLY | stat.S_IWUSR)
            path.unlink()

    # ----------------------------------------------------------------------- reads

    def _exists(self, sha256: str) -> bool:
        return self._blob_path(sha256).is_file()

    def _size(self, sha256: str) -> int:
        return self._blob_path(sha256).stat().st_size

    def _modified(self, sha256: str) -> float | None:
        try:
            return self._blob_path(sha256).stat().st_mtime
        except FileNotFoundError:
            return None

    def _get_file(self, sha256: str, dest: Path) -> None:
        shutil.copyfile(self._blob_path(sha256), dest)

    def _open(self, sha256: str) -> BinaryIO:
        return open(self._blob_path(sha256), "rb")

    def _local_path(self, sha256: str) -> Path | None:
        path = self._blob_path(sha256)
        return path if path.is_file() else None

    def _iter_blobs(self) -> Iterator[str]:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for prefix in sorted(os.scandir(blobs), key=lambda e: e.name):
            if len(prefix.name) != 2 or not prefix.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(prefix.path), key=lambda e: e.name):
                if entry.name.startswith(prefix.name) and entry.is_file(follow_symlinks=False):
                    yield entry.name

    # -------------------------------------------------------------------- partials

    def _partials(self) -> list[os.DirEntry[str]]:
        if not self._tmp_dir.is_dir():
            return []
        return [
            e
            for e in os.scandir(self._tmp_dir)
            if e.name.endswith(_PARTIAL_SUFFIX) and e.is_file(follow_symlinks=False)
        ]

    def _iter_partials(self) -> Iterator[str]:
        for entry in self._partials():
            yield entry.path

    def _remove_partials(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in self._partials():
            try:
                old = entry.stat(follow_symlinks=False).st_mtime <= cutoff
            except FileNotFoundError:  # removed meanwhile (its write finished or failed)
                continue
            if old and _remove_quietly(Path(entry.path)):
                removed += 1
        return removed


def _copy_and_hash(src: BinaryIO, out: BinaryIO) -> tuple[str, int]:
    """Copy ``src`` to ``out`` in chunks, hashing on the way; return (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        n = src.readinto(view)
        if not n:
            break
        chunk = view[:n]
        digest.update(chunk)
        out.write(chunk)
        size += n
    return digest.hexdigest(), size


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort; not possible on Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reused(final: Path, sha256: str) -> BlobInfo:
    """An existing blob being stored again: refresh its time so that ``keel gc``'s grace
    period protects it until the new record referring to it is committed."""
    size = final.stat().st_size
    with contextlib.suppress(OSError):
        os.utime(final)
    return BlobInfo(sha256, size, uploaded=False)
