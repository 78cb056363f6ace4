"""The artifact store contract, on a local folder, fsspec memory and a moto S3 server."""

from __future__ import annotations

import builtins
import errno
import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import keel.artifacts as artifacts
from keel.artifacts import (
    ArtifactStore,
    BlobInfo,
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifact_store,
    register_artifact_store,
)
from keel.artifacts.base import blob_key
from keel.errors import ArtifactError, IntegrityError, InvalidInput, StoreUnavailable


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tamper(store: ArtifactStore, sha: str, data: bytes) -> None:
    """Change a stored blob's bytes behind the store's back."""
    if isinstance(store, LocalArtifactStore):
        path = store.local_path(sha)
        assert path is not None
        os.chmod(path, 0o644)
        path.write_bytes(data)
    else:
        assert isinstance(store, FsspecArtifactStore)
        store.fs.pipe_file(f"{store.root}/{blob_key(sha)}", data)


def _add_partial(store: ArtifactStore, name: str) -> None:
    """Leave a temporary file as an interrupted write would."""
    if isinstance(store, LocalArtifactStore):
        _write(store.root / "tmp" / name, b"half a blob")
    else:
        assert isinstance(store, FsspecArtifactStore)
        store.fs.pipe_file(f"{store.root}/tmp/{name}", b"half a blob")


class _FailsMidway:
    """A file whose first read succeeds and whose next read fails, like a dying disk."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._reads = 0

    def _next_read(self, size: int | None) -> None:
        self._reads += 1
        if self._reads > 1 or size is None or size < 0:
            raise OSError(errno.EIO, "simulated I/O error while reading the source")

    def read(self, size: int | None = -1) -> bytes:
        self._next_read(size)
        return self._file.read(size)

    def readinto(self, buffer: Any) -> int:
        self._next_read(len(buffer))
        return self._file.readinto(buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FailsMidway:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _make_reads_fail(monkeypatch: pytest.MonkeyPatch, store: ArtifactStore, source: Path) -> None:
    """Make the code that reads ``source`` for this store get a file failing midway."""
    if isinstance(store, LocalArtifactStore):
        import keel.artifacts.local as module
    elif store.fs.protocol == "memory" or "memory" in store.fs.protocol:
        import fsspec.spec as module
    else:
        import s3fs.core as module

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode and os.fspath(file) == os.fspath(source):
            return _FailsMidway(builtins.open(file, mode, *args, **kwargs))
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(module, "open", fake_open, raising=False)


# ------------------------------------------------------------------------------- contract


def test_put_file_and_get_file_round_trip(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = _write(tmp_path / "src" / "weights.bin", data)

    info = artifact_store.put_file(source)

    assert info == BlobInfo(_sha(data), len(data), uploaded=True)
    assert artifact_store.exists(info.sha256)
    assert artifact_store.size(info.sha256) == len(data)
    dest = artifact_store.get_file(info.sha256, tmp_path / "out" / "deep" / "copy.bin")
    assert dest == tmp_path / "out" / "deep" / "copy.bin"
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.bin"]  # no temp file left
    with artifact_store.open(info.sha256) as f:
        assert f.read() == data


def test_put_bytes_round_trip(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    info = artifact_store.put_bytes(b"hello keel")
    assert info == BlobInfo(_sha(b"hello keel"), 10, uploaded=True)
    assert artifact_store.get_file(info.sha256, tmp_path / "x").read_bytes() == b"hello keel"
    assert artifact_store.put_bytes(b"hello keel").uploaded is False


def test_put_file_with_known_sha(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "a.txt", b"known")
    info = artifact_store.put_file(source, sha256=_sha(b"known"))
    assert info == BlobInfo(_sha(b"known"), 5, uploaded=True)
    assert artifact_store.get_file(info.sha256, tmp_path / "b.txt").read_bytes() == b"known"


def test_empty_file(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    info = artifact_store.put_file(_write(tmp_path / "empty", b""))
    assert info == BlobInfo(_sha(b""), 0, uploaded=True)
    assert artifact_store.size(info.sha256) == 0
    assert artifact_store.get_file(info.sha256, tmp_path / "copy").read_bytes() == b""


def test_identical_content_is_stored_once(
    artifact_store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = artifact_store.put_file(_write(tmp_path / "run1" / "model.pkl", b"same bytes"))
    before = artifact_store.modified(first.sha256)
    if isinstance(artifact_store, LocalArtifactStore):
        blob = artifact_store.local_path(first.sha256)
        assert blob is not None
        stat_before = blob.stat()
    else:
        assert isinstance(artifact_store, FsspecArtifactStore)
        writes: list[Any] = []
        monkeypatch.setattr(artifact_store.fs, "put_file", lambda *a, **k: writes.append(a))
        monkeypatch.setattr(artifact_store.fs, "pipe_file", lambda *a, **k: writes.append(a))

    again = artifact_store.put_file(_write(tmp_path / "run2" / "copy.pkl", b"same bytes"))
    known = artifact_store.put_file(tmp_path / "run2" / "copy.pkl", sha256=first.sha256)
    as_bytes = artifact_store.put_bytes(b"same bytes")

    assert again == known == as_bytes == BlobInfo(first.sha256, 10, uploaded=False)
    assert list(artifact_store.iter_blobs()) == [first.sha256]
    if isinstance(artifact_store, LocalArtifactStore):
        # reuse refreshes the time, so gc's grace period protects a blob being re-recorded
        assert artifact_store.modified(first.sha256) >= before
    else:
        assert artifact_store.modified(first.sha256) == before
    assert list(artifact_store.iter_partials()) == []
    if isinstance(artifact_store, LocalArtifactStore):
        stat_after = blob.stat()
        assert stat_after.st_ino == stat_before.st_ino
    else:
        assert writes == []


def test_get_file_detects_a_tampered_blob(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    sha = artifact_store.put_bytes(b"original content").sha256
    _tamper(artifact_store, sha, b"tampered content")
    dest = tmp_path / "out" / "file.bin"

    with pytest.raises(IntegrityError, match=sha):
        artifact_store.get_file(sha, dest)

    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the temporary download is gone too
    unchecked = artifact_store.get_file(sha, dest, verify=False)
    assert unchecked.read_bytes() == b"tampered content"


def test_get_file_replaces_an_existing_file(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    sha = artifact_store.put_bytes(b"new").sha256
    dest = _write(tmp_path / "dest", b"old and longer")
    os.chmod(dest, 0o444)
    artifact_store.get_file(sha, dest)
    assert dest.read_bytes() == b"new"


def test_failed_read_midway_leaves_no_blob(
    artifact_store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 * 1024 * 1024)
    source = _write(tmp_path / "big.bin", data)
    _make_reads_fail(monkeypatch, artifact_store, source)

    with pytest.raises(ArtifactError, match="simulated I/O error") as info:
        artifact_store.put_file(source, sha256=_sha(data))

    assert not isinstance(info.value, IntegrityError | StoreUnavailable)
    assert artifact_store.url in str(info.value)
    assert not artifact_store.exists(_sha(data))
    assert list(artifact_store.iter_blobs()) == []
    assert list(artifact_store.iter_partials()) == []
    monkeypatch.undo()
    assert artifact_store.put_file(source).uploaded is True
    assert artifact_store.get_file(_sha(data), tmp_path / "copy").read_bytes() == data


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "A" * 64,
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "0" * 64 + "\n",
        "../../../../etc/passwd",
        "../" + "0" * 61,
        None,
    ],
)
def test_invalid_sha_is_rejected(artifact_store: ArtifactStore, tmp_path: Path, bad: Any) -> None:
    source = _write(tmp_path / "a", b"a")
    calls = [
        lambda: artifact_store.exists(bad),
        lambda: artifact_store.size(bad),
        lambda: artifact_store.modified(bad),
        lambda: artifact_store.get_file(bad, tmp_path / "out"),
        lambda: artifact_store.open(bad),
        lambda: artifact_store.delete(bad),
        lambda: artifact_store.local_path(bad),
    ]
    if bad is not None:
        calls.append(lambda: artifact_store.put_file(source, sha256=bad))
    for call in calls:
        with pytest.raises(InvalidInput, match="sha256"):
            call()
    assert list(artifact_store.iter_blobs()) == []
    assert not (tmp_path / "out").exists()


def test_iter_blobs_and_delete(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    contents = [f"blob {i}".encode() for i in range(3)]
    shas = [artifact_store.put_bytes(data).sha256 for data in contents]
    assert sorted(artifact_store.iter_blobs()) == sorted(shas)

    artifact_store.delete(shas[1])

    assert not artifact_store.exists(shas[1])
    assert sorted(artifact_store.iter_blobs()) == sorted([shas[0], shas[2]])
    artifact_store.delete(shas[1])  # deleting a missing blob is a no-op
    with pytest.raises(ArtifactError, match=shas[1]) as info:
        artifact_store.get_file(shas[1], tmp_path / "gone")
    assert not isinstance(info.value, IntegrityError)
    assert artifact_store.put_bytes(contents[1]).uploaded is True  # can be stored again


def test_missing_blob_errors_name_the_blob(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    sha = _sha(b"never stored")
    assert not artifact_store.exists(sha)
    assert artifact_store.local_path(sha) is None
    for call in (
        lambda: artifact_store.size(sha),
        lambda: artifact_store.open(sha),
        lambda: artifact_store.get_file(sha, tmp_path / "x"),
    ):
        with pytest.raises(ArtifactError, match=f"blob {sha} is not in artifact store"):
            call()
    assert not (tmp_path / "x").exists()


def test_put_file_needs_a_file(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a file"):
        artifact_store.put_file(tmp_path / "missing.bin")
    with pytest.raises(ArtifactError, match="not a file"):
        artifact_store.put_file(tmp_path)


def test_remove_partials(artifact_store: ArtifactStore) -> None:
    _add_partial(artifact_store, "0123abcd.part")
    assert len(list(artifact_store.iter_partials())) == 1
    assert "0123abcd.part" in next(iter(artifact_store.iter_partials()))

    assert artifact_store.remove_partials(older_than_seconds=3600) == 0  # may be in flight
    assert len(list(artifact_store.iter_partials())) == 1
    time.sleep(0.01)
    assert artifact_store.remove_partials(older_than_seconds=0) == 1
    assert list(artifact_store.iter_partials()) == []
    with pytest.raises(InvalidInput):
        artifact_store.remove_partials(older_than_seconds=-1)


def test_modified_is_recent(artifact_store: ArtifactStore) -> None:
    sha = artifact_store.put_bytes(b"now").sha256
    modified = artifact_store.modified(sha)
    assert modified is not None
    assert abs(modified - time.time()) < 120
    assert artifact_store.modified(_sha(b"absent")) is None


# --------------------------------------------------------------------------- local store


def test_local_store_layout_and_read_only_blobs(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "artifacts"
    store = LocalArtifactStore(root)
    assert not root.exists()  # the constructor does no I/O

    info = store.put_bytes(b"content")

    blob = root / "blobs" / info.sha256[:2] / info.sha256
    assert store.local_path(info.sha256) == blob
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert list((root / "tmp").iterdir()) == []


def test_local_store_removes_only_old_partials(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    old = _write(tmp_path / "tmp" / "old.part", b"x")
    young = _write(tmp_path / "tmp" / "young.part", b"x")
    other = _write(tmp_path / "tmp" / "notes.txt", b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    assert sorted(store.iter_partials()) == sorted([str(old), str(young)])
    assert store.remove_partials(older_than_seconds=3600) == 1
    assert not old.exists()
    assert young.exists() and other.exists()


def test_local_store_refuses_content_that_does_not_match_its_sha(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    source = _write(tmp_path / "a", b"actual content")
    claimed = _sha(b"claimed content")

    with pytest.raises(IntegrityError, match="changed while being stored"):
        store.put_file(source, sha256=claimed)

    assert not store.exists(claimed)
    assert list(store.iter_blobs()) == []
    assert list(store.iter_partials()) == []


def test_local_store_root_that_is_a_file(tmp_path: Path) -> None:
    occupied = _write(tmp_path / "occupied", b"not a folder")
    store = LocalArtifactStore(occupied)
    with pytest.raises(ArtifactError, match=str(occupied)):
        store.put_bytes(b"x")
    assert occupied.read_bytes() == b"not a folder"


def test_local_store_accepts_file_urls(tmp_path: Path) -> None:
    store = LocalArtifactStore(f"file://{tmp_path}/artifacts")
    assert store.root == tmp_path / "artifacts"
    assert store.url == f"file://{tmp_path}/artifacts"


def test_local_store_ignores_foreign_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    sha = store.put_bytes(b"real").sha256
    _write(tmp_path / "blobs" / "zz" / "README", b"not a blob")
    _write(tmp_path / "blobs" / "00" / ("f" * 64), b"misplaced")
    assert list(store.iter_blobs()) == [sha]


# ------------------------------------------------------------------------------ registry


def test_open_artifact_store_by_url(tmp_path: Path) -> None:
    local = open_artifact_store(str(tmp_path / "a"))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "a"
    from_url = open_artifact_store(f"file://{tmp_path}/b")
    assert isinstance(from_url, LocalArtifactStore) and from_url.root == tmp_path / "b"
    relative = open_artifact_store("artifacts")  # the root conftest chdirs to tmp_path
    assert isinstance(relative, LocalArtifactStore) and relative.root == tmp_path / "artifacts"
    remote = open_artifact_store("memory://keel-registry-test")
    assert isinstance(remote, FsspecArtifactStore)
    with pytest.raises(InvalidInput):
        open_artifact_store("")


def test_registered_factory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "_FACTORIES", {})
    calls: list[tuple[str, dict[str, Any]]] = []

    def factory(url: str, options: dict[str, Any]) -> ArtifactStore:
        calls.append((url, options))
        return LocalArtifactStore(tmp_path / "mine")

    register_artifact_store("MyBlob", factory)

    store = open_artifact_store("myblob://somewhere/x", {"token": "t"})
    assert isinstance(store, LocalArtifactStore) and store.root == tmp_path / "mine"
    assert calls == [("myblob://somewhere/x", {"token": "t"})]
    with pytest.raises(InvalidInput):
        register_artifact_store("not a scheme", factory)


def test_unknown_protocol_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="nosuchproto"):
        open_artifact_store("nosuchproto://x/y")


def test_import_does_not_load_fsspec() -> None:
    code = "import sys, keel.artifacts; sys.exit('fsspec' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ------------------------------------------------------------------------- unreachable S3


def test_unreachable_s3_endpoint_is_store_unavailable(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends
    store = FsspecArtifactStore(
        "s3://keel-test/prefix",
        {
            "client_kwargs": {
                "endpoint_url": f"http://127.0.0.1:{port}",
                "region_name": "us-east-1",
            },
            "key": "AKIAKEELTESTKEY",
            "secret": "keel-secret-value",
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )
    source = _write(tmp_path / "a", b"a")
    started = time.monotonic()
    for call in (
        lambda: store.exists(_sha(b"a")),
        lambda: store.put_file(source),
        lambda: list(store.iter_blobs()),
    ):
        with pytest.raises(StoreUnavailable, match="s3://keel-test/prefix") as info:
            call()
        message = str(info.value)
        assert "\n" not in message
        assert "AKIAKEELTESTKEY" not in message and "keel-secret-value" not in message
    assert time.monotonic() - started < 30
