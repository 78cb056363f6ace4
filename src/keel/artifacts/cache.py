"""The local, write-protected artifact cache.

This module owns :class:`ArtifactCache`: local read-only copies of blobs under
``<root>/blobs/<sha[:2]>/<sha>`` (downloaded once, verified) and the materialisation of a
file tree (``{relative path: sha256}``) from them, by hardlink where possible, else by copy.
Files it places are read-only (mode 0o444); folders stay writable. It never touches
``<root>/meta`` (the metadata cache beside it belongs to the tracking client).

A blob of a store on this machine's disk is used in place (``store.local_path``) and not
copied into the cache. Hardlinked files share their inode with that blob: they are read-only
so that nobody changes a stored artifact by accident through the cache.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from keel.artifacts.base import (
    ArtifactStore,
    _remove_quietly,
    blob_key,
    check_sha256,
    sha256_of_file,
)
from keel.errors import ArtifactError, InvalidInput, KeelError
from keel.paths import check_relative_path

__all__ = ["ArtifactCache", "check_relpath"]

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def check_relpath(path: object) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a tree.

    The rules are :mod:`keel.paths`' (the same for every surface).

    Args:
        path: the candidate, e.g. ``model/weights.bin``.

    Returns:
        The path, unchanged.

    Raises:
        InvalidInput: not a string, empty, absolute, with a ``..`` or ``.`` or empty segment,
            a NUL or other control character, a backslash, a look-alike slash or an
            invisible Unicode character.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"artifact path must be a string, got {type(path).__name__}")
    return check_relative_path(path, "artifact path")


class ArtifactCache:
    """Local, read-only copies of blobs, and file trees made of them.

    Args:
        root: the cache folder (created on first use; the constructor does no I/O).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(os.path.abspath(os.path.expanduser(str(root))))

    def __repr__(self) -> str:
        return f"ArtifactCache({str(self.root)!r})"

    def _cached_blob(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def blob(self, store: ArtifactStore, sha256: str) -> Path:
        """A local, read-only file with the blob's content.

        The store's own file when the store is on this machine, else the cache's copy,
        downloaded (and verified) on first use.

        Args:
            store: where the blob is stored.
            sha256: the blob.

        Returns:
            The file. Never write to it.

        Raises:
            InvalidInput: ``sha256`` is not a sha256 digest.
            IntegrityError: the downloaded content does not match ``sha256``.
            ArtifactError: the blob is not stored, or the cache cannot be written.
        """
        check_sha256(sha256)
        local = store.local_path(sha256)
        if local is not None:
            return local
        path = self._cached_blob(sha256)
        if path.is_file():
            return path
        tmp = path.parent / f".{sha256}.{uuid.uuid4().hex}.part"
        try:
            with _errors(f"caching blob {sha256} in {self.root}"):
                path.parent.mkdir(parents=True, exist_ok=True)
                store.get_file(sha256, tmp, verify=True)
                os.chmod(tmp, _READ_ONLY)
                os.replace(tmp, path)
        finally:
            _remove_quietly(tmp)
        return path

    def materialize(
        self,
        store: ArtifactStore,
        entries: Mapping[str, str],
        target: Path | str,
        link: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Make ``target/<relpath>`` a read-only file with each entry's blob content.

        Files are hardlinked from :meth:`blob` when ``link`` and on the same filesystem
        (falling back to a copy if the link fails), else copied. Files already correct are
        left as they are; wrong ones are replaced atomically. Other files under ``target``
        are not touched.

        Args:
            store: where the blobs are stored.
            entries: ``{relative POSIX path: sha256}``.
            target: the tree's folder (created if needed).
            link: hardlink where possible (False: always copy).
            progress: called with each file's size once it is in place.

        Returns:
            ``target``.

        Raises:
            InvalidInput: a path or digest is malformed (checked before anything is written).
            ArtifactError: a file cannot be placed (e.g. a folder is in the way).
        """
        target = Path(target)
        checked = {check_relpath(rel): check_sha256(sha) for rel, sha in entries.items()}
        with _errors(f"creating {target}"):
            target.mkdir(parents=True, exist_ok=True)
            real_target = target.resolve()
        for rel, sha in sorted(checked.items()):
            source = self.blob(store, sha)
            dest = target.joinpath(*rel.split("/"))
            with _errors(f"placing {rel!r} in {target}"):
                self._place(source, sha, dest, real_target, link)
            if progress is not None:
                progress(source.stat().st_size)
        return target

    def tree_hash_ok(
        self,
        target: Path | str,
        entries: Mapping[str, str],
        sizes: Mapping[str, int] | None = None,
    ) -> bool:
        """Cheap check that a materialised tree is complete: no content is hashed.

        Every entry must be a regular file under ``target``, of the expected size: from
        ``sizes`` when given, else the size of the blob's copy in this cache when there is
        one (otherwise only its presence is checked).

        Args:
            target: the tree's folder.
            entries: ``{relative POSIX path: sha256}``.
            sizes: ``{relative POSIX path: size in bytes}``, if known.

        Returns:
            Whether every entry looks right.
        """
        target = Path(target)
        for rel, sha in entries.items():
            check_relpath(rel)
            check_sha256(sha)
            try:
                found = target.joinpath(*rel.split("/")).lstat()
            except OSError:
                return False
            if not stat.S_ISREG(found.st_mode):
                return False
            expected = sizes.get(rel) if sizes is not None else None
            if expected is None:
                try:
                    expected = self._cached_blob(sha).stat().st_size
                except OSError:
                    continue
            if found.st_size != expected:
                return False
        return True

    # ------------------------------------------------------------------- helpers

    def _place(self, source: Path, sha256: str, dest: Path, real_target: Path, link: bool) -> None:
        """Make ``dest`` a read-only file with ``source``'s content (``sha256``)."""
        src = source.stat()
        try:
            current: os.stat_result | None = dest.lstat()
        except FileNotFoundError:
            current = None
        if current is not None:
            if stat.S_ISDIR(current.st_mode):
                raise ArtifactError(f"cannot place {dest}: a folder is in the way")
            if stat.S_ISREG(current.st_mode) and (
                (current.st_dev, current.st_ino) == (src.st_dev, src.st_ino)
                or (current.st_size == src.st_size and sha256_of_file(dest)[0] == sha256)
            ):
                _write_protect(dest, current)
                return
        # checked on the part that exists before any folder is made: mkdir through a link
        # would already create folders outside
        existing = dest.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.resolve().is_relative_to(real_target):
            raise ArtifactError(f"cannot place {dest}: a symbolic link leads out of {real_target}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.parent.resolve().is_relative_to(real_target):
            raise ArtifactError(f"cannot place {dest}: a symbolic link leads out of {real_target}")
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
        try:
            linked = False
            if link and src.st_dev == dest.parent.stat().st_dev:
                try:
                    os.link(source, tmp)
                    linked = True
                except OSError:  # no hardlinks here, or not allowed: copy instead
                    pass
            if linked:
                _write_protect(tmp, src)
            else:
                shutil.copyfile(source, tmp)
                os.chmod(tmp, _READ_ONLY)
            if current is not None and os.name == "nt":  # POSIX replaces read-only files as is
                os.chmod(dest, _READ_ONLY | stat.S_IWUSR)
            os.replace(tmp, dest)
        finally:
            _remove_quietly(tmp)


def _write_protect(path: Path, st: os.stat_result) -> None:
    """Remove the write permission bits of ``path`` if it has any."""
    if st.st_mode & _WRITE_BITS:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_WRITE_BITS)


@contextmanager
def _errors(action: str) -> Iterator[None]:
    """Turn a local filesystem failure into an ArtifactError (keel errors pass through)."""
    try:
        yield
    except KeelError:
        raise
    except OSError as exc:
        detail = " ".join(str(exc).split())
        raise ArtifactError(f"{action} failed: {type(exc).__name__}: {detail}") from exc
