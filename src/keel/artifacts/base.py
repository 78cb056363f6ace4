"""The artifact store interface: content-addressed, immutable blobs.

This module owns :class:`ArtifactStore`, the small interface every artifact store implements
(local folder, any fsspec URL, or a user's own), :class:`BlobInfo`, the sha256 validation and
the translation of low-level errors into keel errors.

A blob is the content of one file, stored once under its sha256 at
``<root>/blobs/<sha[:2]>/<sha>``. A blob is never rewritten once it exists, so a later write
cannot corrupt an artifact another run already refers to. Which run or model file maps to which
blob is recorded by the metadata store, not here.

Implementing a store (like a Kedro dataset): subclass :class:`ArtifactStore`, set ``url`` and
implement the private methods ``_put_file``, ``_size``, ``_open``, ``_delete`` and
``_iter_blobs`` (the others have working defaults). The public methods validate their
arguments and turn any failure into :class:`~keel.errors.ArtifactError` or
:class:`~keel.errors.StoreUnavailable` with a one-line message naming the store's URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from keel.errors import (
    ArtifactError,
    IntegrityError,
    InvalidInput,
    KeelError,
    StoreUnavailable,
)

__all__ = [
    "ArtifactStore",
    "BlobInfo",
    "blob_key",
    "check_sha256",
    "redact_url",
    "sha256_of_file",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_USERINFO = re.compile(r"(?<=://)[^/@]*@")
_CHUNK = 1 << 20

# Exception class names (anywhere in the MRO or the cause chain) meaning "cannot reach the
# store" rather than "the store refused": botocore, aiohttp, fsspec and the builtins.
_UNREACHABLE_NAMES = frozenset(
    {
        "ConnectionError",
        "TimeoutError",
        "HTTPClientError",
        "ReadTimeoutError",
        "ClientConnectionError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "FSTimeoutError",
        "gaierror",
    }
)


@dataclass(frozen=True)
class BlobInfo:
    """What a write stored.

    Attributes:
        sha256: the blob's content hash (64 lowercase hex characters).
        size: the blob's size in bytes.
        uploaded: False when the blob already existed and nothing was written.
    """

    sha256: str
    size: int
    uploaded: bool


def check_sha256(value: object) -> str:
    """Return ``value`` if it is a sha256 hex digest (64 lowercase hex characters).

    Args:
        value: the candidate digest.

    Returns:
        The digest, unchanged.

    Raises:
        InvalidInput: anything else (which also stops path traversal through a digest).
    """
    if isinstance(value, str) and _SHA256.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise InvalidInput(f"not a sha256 digest (64 lowercase hex characters): {shown}")


def blob_key(sha256: str) -> str:
    """The blob's location relative to a store's root: ``blobs/<sha[:2]>/<sha>``."""
    return f"blobs/{sha256[:2]}/{sha256}"


def sha256_of_file(path: Path) -> tuple[str, int]:
    """Hash a file's bytes.

    Args:
        path: the file.

    Returns:
        ``(sha256 hex digest, size in bytes)``.
    """
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        return digest, os.fstat(f.fileno()).st_size


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages."""
    return _USERINFO.sub("***@", url)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}"


def is_unreachable(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) means the store cannot be reached."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror):
            return True
        if any(cls.__name__ in _UNREACHABLE_NAMES for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


class ArtifactStore(ABC):
    """Where artifact bytes live: immutable blobs addressed by their sha256.

    Attributes:
        url: the root URL (or folder) as configured.
    """

    url: str

    # ----------------------------------------------------------------------------- public

    def put_file(self, path: Path | str, sha256: str | None = None) -> BlobInfo:
        """Store a file's content as a blob, unless a blob with that content exists.

        Args:
            path: the local file.
            sha256: its content hash if already computed (saves a read where the store can
                use it; a store that hashes while copying checks it).

        Returns:
            The blob's hash and size, and whether anything was written.

        Raises:
            InvalidInput: ``sha256`` is not a sha256 digest.
            ArtifactError: ``path`` is not a file, or the write failed.
            IntegrityError: the file's content does not match the ``sha256`` given.
            StoreUnavailable: the store cannot be reached.
        """
        if sha256 is not None:
            check_sha256(sha256)
        path = Path(path)
        if not path.is_file():
            where = f"artifact store {self._safe_url}"
            raise ArtifactError(f"cannot store {path} in {where}: not a file")
        with self._errors(f"storing {path}"):
            return self._put_file(path, sha256)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes as a blob, unless a blob with that content exists.

        Args:
            data: the content.

        Returns:
            The blob's hash and size, and whether anything was written.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"put_bytes needs bytes, got {type(data).__name__}")
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        with self._errors(f"storing blob {sha}"):
            return self._put_bytes(data, sha)

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        check_sha256(sha256)
        with self._errors(f"checking blob {sha256}"):
            return self._exists(sha256)

    def size(self, sha256: str) -> int:
        """The blob's size in bytes.

        Raises:
            ArtifactError: the blob is not stored.
        """
        check_sha256(sha256)
        with self._errors(f"reading the size of blob {sha256}", sha256):
            return self._size(sha256)

    def modified(self, sha256: str) -> float | None:
        """When the blob was written (POSIX timestamp), or None if the store cannot tell.

        Used by garbage collection to spare blobs written during its grace period.
        """
        check_sha256(sha256)
        with self._errors(f"reading the time of blob {sha256}", sha256):
            return self._modified(sha256)

    def get_file(self, sha256: str, dest: Path | str, verify: bool = True) -> Path:
        """Download a blob to ``dest``, atomically.

        The bytes go to a temporary file in ``dest``'s folder that replaces ``dest`` only once
        complete (and verified), so ``dest`` never holds partial content.

        Args:
            sha256: the blob.
            dest: the local file to write (replaced if it exists; folders are created).
            verify: check the downloaded bytes hash to ``sha256``.

        Returns:
            ``dest``.

        Raises:
            IntegrityError: the stored blob's content does not match its hash; ``dest`` is
                not created.
            ArtifactError: the blob is not stored, or the download failed.
        """
        check_sha256(sha256)
        dest = Path(dest)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
        try:
            with self._errors(f"downloading blob {sha256} to {dest}", sha256):
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._get_file(sha256, tmp)
                if verify:
                    actual, _ = sha256_of_file(tmp)
                    if actual != sha256:
                        raise IntegrityError(
                            f"blob {sha256} in artifact store {self._safe_url} is corrupt: its "
                            f"content hashes to {actual}"
                        )
                os.replace(tmp, dest)
        finally:
            _remove_quietly(tmp)
        return dest

    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for reading (binary). The caller closes it."""
        check_sha256(sha256)
        with self._errors(f"opening blob {sha256}", sha256):
            return self._open(sha256)

    def delete(self, sha256: str) -> None:
        """Remove a blob (for garbage collection only). Removing a missing blob is a no-op."""
        check_sha256(sha256)
        with self._errors(f"deleting blob {sha256}"):
            self._delete(sha256)

    def iter_blobs(self) -> Iterator[str]:
        """Yield the sha256 of every stored blob (for garbage collection)."""
        with self._errors("listing blobs"):
            for sha in self._iter_blobs():
                if _SHA256.fullmatch(sha):
                    yield sha

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file on this machine's disk, or None (remote store, or not stored).

        A local path lets the cache hardlink instead of downloading. The file is read-only
        and shared: never write to it.
        """
        check_sha256(sha256)
        with self._errors(f"locating blob {sha256}"):
            return self._local_path(sha256)

    def iter_partials(self) -> Iterator[str]:
        """Yield the locations of leftovers of interrupted writes (temporary files)."""
        with self._errors("listing temporary files"):
            yield from self._iter_partials()

    def remove_partials(self, older_than_seconds: float) -> int:
        """Remove leftovers of interrupted writes older than ``older_than_seconds``.

        Args:
            older_than_seconds: spare younger files (a write may still be in flight).

        Returns:
            How many were removed.
        """
        if older_than_seconds < 0:
            raise InvalidInput(f"older_than_seconds must be >= 0, got {older_than_seconds}")
        with self._errors("removing temporary files"):
            return self._remove_partials(older_than_seconds)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._safe_url!r})"

    # ----------------------------------------------------------------- to implement

    @abstractmethod
    def _put_file(self, path: Path, sha256: str | None) -> BlobInfo:
        """Store the file unless its blob exists; must never leave a partial blob visible."""

    @abstractmethod
    def _size(self, sha256: str) -> int:
        """The blob's size; raise FileNotFoundError when it is not stored."""

    @abstractmethod
    def _open(self, sha256: str) -> BinaryIO:
        """Open the blob for binary reading; raise FileNotFoundError when it is not stored."""

    @abstractmethod
    def _delete(self, sha256: str) -> None:
        """Remove the blob; no error when it is not stored."""

    @abstractmethod
    def _iter_blobs(self) -> Iterator[str]:
        """Yield the sha256 of every stored blob (other names are filtered out)."""

    def _put_bytes(self, data: bytes, sha256: str) -> BlobInfo:
        """Store bytes whose hash is ``sha256``. Default: through a temporary file."""
        with tempfile.TemporaryDirectory(prefix="keel-blob-") as folder:
            path = Path(folder) / sha256
            path.write_bytes(data)
            return self._put_file(path, sha256)

    def _exists(self, sha256: str) -> bool:
        """Whether the blob is stored. Default: through :meth:`_size`."""
        try:
            self._size(sha256)
        except FileNotFoundError:
            return False
        return True

    def _modified(self, sha256: str) -> float | None:
        """The blob's modification time, or None when unknown. Default: unknown."""
        return None

    def _get_file(self, sha256: str, dest: Path) -> None:
        """Write the blob's bytes to ``dest`` (a fresh temporary path). Default: via _open."""
        with self._open(sha256) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)

    def _local_path(self, sha256: str) -> Path | None:
        """The blob's local file, if the store is on this machine. Default: None."""
        return None

    def _iter_partials(self) -> Iterator[str]:
        """Leftovers of interrupted writes. Default: none."""
        return iter(())

    def _remove_partials(self, older_than_seconds: float) -> int:
        """Remove leftovers older than the given age. Default: nothing to remove."""
        return 0

    # ------------------------------------------------------------------- helpers

    @property
    def _safe_url(self) -> str:
        return redact_url(str(getattr(self, "url", "?")))

    @contextmanager
    def _errors(self, action: str, sha256: str | None = None) -> Iterator[None]:
        """Turn any failure inside the block into a keel error naming the store."""
        try:
            yield
        except KeelError:
            raise
        except Exception as exc:
            raise self._translate(exc, action, sha256) from exc

    def _translate(self, exc: Exception, action: str, sha256: str | None) -> KeelError:
        """The keel error for a low-level failure (override to recognise more errors)."""
        where = f"artifact store {self._safe_url}"
        if is_unreachable(exc):
            return StoreUnavailable(f"{where} is unreachable ({action}): {_one_line(exc)}")
        if sha256 is not None and isinstance(exc, FileNotFoundError):
            return ArtifactError(f"blob {sha256} is not in {where}")
        return ArtifactError(f"{action} failed in {where}: {_one_line(exc)}")


def _remove_quietly(path: Path) -> bool:
    """Delete a file if it exists (making it writable first where the OS needs that).

    Returns:
        Whether a file was removed.
    """
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except PermissionError:
        try:
            os.chmod(path, 0o644)
            path.unlink()
        except OSError:
            return False
    except OSError:
        return False
    return True
