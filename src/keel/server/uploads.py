"""Uploads in flight: the files a request's body is staged in, and what a crash leaves of them.

An artifact upload through the server (``PUT /api/v1/blobs/<sha256>``, MLflow's
``PUT /api/2.0/mlflow-artifacts/artifacts/<path>``) is streamed into a file of
``<work_dir>/uploads/`` while it is hashed, then stored and removed. :func:`staged_upload`
makes that file and holds an exclusive ``flock`` on it for as long as the upload runs; the
operating system drops the lock when the process ends, however it ends. So a file there
that nobody holds locked was left by a process killed mid-upload (SIGKILL, the OOM
killer), and a locked one belongs to an upload in flight, in this process or in another
replica sharing the folder, however long it has been.

:func:`find_partial_uploads` lists them (``keel doctor`` reports the leftovers);
:func:`remove_partial_uploads` removes the leftovers (``keel doctor --repair``, ``keel gc``
and the admin route ``POST /api/v1/gc/remove-partials``).

A file is made as ``<name>.new``, locked, then renamed ``<name>.part``: a ``.part`` file is
locked from the moment it has that name, so an unlocked one is never an upload about to
lock it. A leftover is removed only when also older than the grace period those commands
take (``--grace``, default one hour) and, for a ``.new`` file, at least a minute old.
Where ``flock`` does not work (no ``fcntl``, a network mount without locks), age alone
decides: the grace period is what spares an upload in flight there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "PARTIAL_SUFFIX",
    "UPLOADS",
    "PartialUpload",
    "find_partial_uploads",
    "remove_partial_uploads",
    "request_uploads_dir",
    "staged_upload",
    "uploads_dir",
]

#: the folder of uploads in flight, in the server's work folder
UPLOADS = "uploads"
PARTIAL_SUFFIX = ".part"
#: the name a staged file has until it is locked
NEW_SUFFIX = ".new"
#: a ``.new`` file younger than this may be an upload about to lock it
NEW_FILE_MIN_AGE_S = 60.0

_Expired = Callable[[Path, float], bool]


def uploads_dir(work_dir: Path) -> Path:
    """The folder of uploads in flight of a server whose work folder is ``work_dir``."""
    return Path(work_dir) / UPLOADS


def request_uploads_dir(request: Request) -> Path:
    """The uploads folder of the server answering ``request`` (its ``work_dir``, else the
    ``server/`` folder of its cache, as for its pipelines and jobs)."""
    from keel.server.deps import get_client, get_settings

    work_dir = get_settings(request).work_dir
    return uploads_dir(work_dir or get_client(request).settings.cache_dir / "server")


@dataclass(frozen=True)
class StagedUpload:
    """A file an upload is written to: ``handle`` (binary, for writing) and its ``path``.
    Flush ``handle`` before reading ``path``."""

    path: Path
    handle: BinaryIO


@contextlib.contextmanager
def staged_upload(folder: Path, prefix: str) -> Iterator[StagedUpload]:
    """A new file in ``folder`` (``<prefix>…part``), locked while the block runs and removed
    when it ends, whatever way it ends.

    Example:
        >>> with staged_upload(uploads_dir(work_dir), "blob-") as staged:  # doctest: +SKIP
        ...     staged.handle.write(b"...")
        ...     staged.handle.flush()
        ...     store.put_file(staged.path, sha256)
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=NEW_SUFFIX, dir=folder)
    new = Path(name)
    path = new.with_name(new.name[: -len(NEW_SUFFIX)] + PARTIAL_SUFFIX)
    handle = os.fdopen(fd, "wb")
    try:
        _lock(fd)
        os.rename(new, path)
    except BaseException:
        handle.close()
        new.unlink(missing_ok=True)
        raise
    try:
        yield StagedUpload(path, handle)
    finally:
        # Removed while still locked: a sweep never sees this file unlocked.
        path.unlink(missing_ok=True)
        handle.close()


@dataclass(frozen=True)
class PartialUpload:
    """A file in the uploads folder.

    Attributes:
        path: where it is.
        size: its bytes.
        modified: when it was last written to (POSIX time).
        live: an upload holds it (None: cannot be told, no working ``flock`` here).
    """

    path: Path
    size: int
    modified: float
    live: bool | None

    @property
    def left_over(self) -> bool:
        """Whether no upload holds it (or, when that cannot be told, whether it might be a
        leftover: its age then decides)."""
        return self.live is not True

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "size": self.size,
            "modified": self.modified,
            "live": self.live,
        }


def find_partial_uploads(folder: Path) -> list[PartialUpload]:
    """Every staged file in ``folder``, each said live or not (sorted by path)."""
    found = []
    for path in _candidates(folder):
        probed = _probe(path, remove_if=None)
        if probed is not None:
            found.append(probed)
    return found


def remove_partial_uploads(
    folder: Path, older_than_seconds: float, dry_run: bool = False
) -> list[PartialUpload]:
    """Remove the files of ``folder`` no upload holds that were last written to more than
    ``older_than_seconds`` ago; returns them (in a dry run: those it would remove)."""
    cutoff = time.time() - older_than_seconds
    new_cutoff = min(cutoff, time.time() - NEW_FILE_MIN_AGE_S)

    def expired(path: Path, modified: float) -> bool:
        return modified <= (new_cutoff if path.name.endswith(NEW_SUFFIX) else cutoff)

    removed = []
    for path in _candidates(folder):
        probed = _probe(path, remove_if=None if dry_run else expired)
        if probed is None or not probed.left_over or not expired(path, probed.modified):
            continue
        if dry_run or not path.exists():
            removed.append(probed)
    return removed


def _candidates(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(
        Path(e.path)
        for e in entries
        if e.name.endswith((PARTIAL_SUFFIX, NEW_SUFFIX)) and e.is_file(follow_symlinks=False)
    )


def _probe(path: Path, remove_if: _Expired | None) -> PartialUpload | None:
    """The file as it is now (None when it is gone); given ``remove_if``, also removed when
    no upload holds it and ``remove_if(path, modified)`` says so, while this process holds
    its lock (so two sweeps never remove a file an upload made in between)."""
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            # read-write: on NFS an exclusive lock needs a file open for writing
            fd = os.open(path, os.O_RDWR | flags)
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | flags)
    except FileNotFoundError:
        return None
    try:
        live = _held_by_another(fd)
        stat = os.fstat(fd)
        found = PartialUpload(path, stat.st_size, stat.st_mtime, live)
        if remove_if is not None and found.left_over and remove_if(path, stat.st_mtime):
            with contextlib.suppress(FileNotFoundError):
                # the same file still (not one a concurrent sweep removed and a new
                # upload happened to name alike)
                if os.path.samestat(os.stat(path, follow_symlinks=False), stat):
                    path.unlink()
        return found
    finally:
        os.close(fd)


def _lock(fd: int) -> None:
    """Hold an exclusive lock on the open file ``fd`` (none where ``flock`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: age alone tells a leftover
        return
    with contextlib.suppress(OSError):  # a file system without locks: age alone, again
        fcntl.flock(fd, fcntl.LOCK_EX)


def _held_by_another(fd: int) -> bool | None:
    """Whether another open file holds the lock of ``fd``'s file; None when it cannot be
    told. A lock taken here is kept until ``fd`` is closed."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return True
        return None  # ENOLCK and the like: this file system keeps no locks
    return False
