"""The write-protected artifact cache: blobs, materialised trees, path checks."""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts import ArtifactCache, ArtifactStore, FsspecArtifactStore, LocalArtifactStore
from keel.artifacts.base import blob_key
from keel.errors import ArtifactError, IntegrityError, InvalidInput

FILES = {
    "model.pkl": b"pickled model",
    "data/train.csv": b"a,b\n1,2\n",
    "data/deep/er/copy.pkl": b"pickled model",  # same content as model.pkl: one blob
    "empty": b"",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_only(path: Path) -> bool:
    """No write permission bit set (``os.access`` lies when the tests run as root)."""
    mode = path.stat().st_mode
    return mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0 and (
        os.geteuid() == 0 or not os.access(path, os.W_OK)
    )


def _filled(store: ArtifactStore) -> dict[str, str]:
    return {rel: store.put_bytes(data).sha256 for rel, data in FILES.items()}


def _memory_store() -> FsspecArtifactStore:
    return FsspecArtifactStore(f"memory://keel-cache-test-{uuid.uuid4().hex}")


def _check_tree(target: Path) -> None:
    for rel, data in FILES.items():
        path = target / rel
        assert path.read_bytes() == data
        assert _read_only(path), rel
    assert stat.S_IMODE((target / "data" / "deep").stat().st_mode) & stat.S_IWUSR  # writable


def test_local_store_blobs_are_hardlinked(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)

    target = cache.materialize(store, entries, tmp_path / "cache" / "runs" / "r1")

    assert target == tmp_path / "cache" / "runs" / "r1"
    _check_tree(target)
    for rel, sha in entries.items():
        blob = store.local_path(sha)
        assert blob is not None
        assert (target / rel).stat().st_ino == blob.stat().st_ino
    assert not (tmp_path / "cache" / "blobs").exists()  # nothing downloaded for a local store
    assert stat.S_IMODE(store.local_path(entries["model.pkl"]).stat().st_mode) == 0o444


def test_remote_store_blobs_are_downloaded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _memory_store()
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)
    downloads: list[str] = []
    real_get_file = store.get_file

    def counting_get_file(sha256: str, dest: Path, verify: bool = True) -> Path:
        downloads.append(sha256)
        assert verify
        return real_get_file(sha256, dest, verify)

    monkeypatch.setattr(store, "get_file", counting_get_file)

    first = cache.materialize(store, entries, tmp_path / "t1")
    second = cache.materialize(store, entries, tmp_path / "t2")

    _check_tree(first)
    _check_tree(second)
    assert sorted(downloads) == sorted(set(entries.values()))  # once per distinct blob
    for sha in entries.values():
        blob = tmp_path / "cache" / blob_key(sha)
        assert stat.S_IMODE(blob.stat().st_mode) == 0o444
        assert cache.blob(store, sha) == blob
    # same filesystem: the trees are hardlinks of the cache's read-only copies
    cached = tmp_path / "cache" / blob_key(entries["model.pkl"])
    assert (first / "model.pkl").stat().st_ino == cached.stat().st_ino
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["blobs"]  # no meta


def test_remote_store_copies_when_asked(tmp_path: Path) -> None:
    store = _memory_store()
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)

    target = cache.materialize(store, entries, tmp_path / "copies", link=False)

    _check_tree(target)
    for rel, sha in entries.items():
        assert (target / rel).stat().st_ino != cache.blob(store, sha).stat().st_ino
        assert (target / rel).stat().st_nlink == 1


def test_local_store_copies_when_asked(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    entries = _filled(store)
    target = ArtifactCache(tmp_path / "cache").materialize(
        store, entries, tmp_path / "copies", link=False
    )
    _check_tree(target)
    blob = store.local_path(entries["model.pkl"])
    assert blob is not None
    assert (target / "model.pkl").stat().st_ino != blob.stat().st_ino


@pytest.mark.parametrize("link", [True, False])
@pytest.mark.parametrize("kind", ["local", "memory"])
def test_materialize_twice_is_idempotent(tmp_path: Path, kind: str, link: bool) -> None:
    store: ArtifactStore = (
        LocalArtifactStore(tmp_path / "artifacts") if kind == "local" else _memory_store()
    )
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)
    target = tmp_path / "tree"
    cache.materialize(store, entries, target, link=link)
    before = {rel: (target / rel).stat() for rel in entries}

    cache.materialize(store, entries, target, link=link)

    _check_tree(target)
    for rel, st in before.items():
        after = (target / rel).stat()
        assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), rel
    leftovers = [p for p in target.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []
    assert cache.tree_hash_ok(target, entries)


def test_wrong_files_are_replaced(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)
    target = tmp_path / "tree"
    (target / "data").mkdir(parents=True)
    same_size = target / "model.pkl"
    same_size.write_bytes(b"X" * len(FILES["model.pkl"]))
    os.chmod(same_size, 0o444)
    other_size = target / "data" / "train.csv"
    other_size.write_bytes(b"something else entirely")
    os.chmod(other_size, 0o444)
    (target / "empty").symlink_to(tmp_path / "elsewhere")
    unrelated = target / "notes.txt"
    unrelated.write_bytes(b"mine")

    cache.materialize(store, entries, target)

    _check_tree(target)
    assert not (target / "empty").is_symlink()
    assert unrelated.read_bytes() == b"mine"  # files outside the entries are not touched


def test_replacing_a_hardlinked_file_leaves_the_store_blob_read_only(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    cache = ArtifactCache(tmp_path / "cache")
    v1 = store.put_bytes(b"version 1").sha256
    v2 = store.put_bytes(b"version 2").sha256
    target = tmp_path / "tree"
    cache.materialize(store, {"weights": v1}, target)

    cache.materialize(store, {"weights": v2}, target)

    assert (target / "weights").read_bytes() == b"version 2"
    old_blob = store.local_path(v1)
    assert old_blob is not None
    assert old_blob.read_bytes() == b"version 1"
    assert stat.S_IMODE(old_blob.stat().st_mode) == 0o444


def test_writable_correct_copy_is_write_protected(tmp_path: Path) -> None:
    store = _memory_store()
    cache = ArtifactCache(tmp_path / "cache")
    entries = {"a.txt": store.put_bytes(b"aaa").sha256}
    target = tmp_path / "tree"
    target.mkdir()
    (target / "a.txt").write_bytes(b"aaa")
    inode = (target / "a.txt").stat().st_ino

    cache.materialize(store, entries, target, link=False)

    assert (target / "a.txt").stat().st_ino == inode  # kept: its content was right
    assert _read_only(target / "a.txt")


@pytest.mark.parametrize(
    "bad",
    ["../x", "/etc/passwd", "a/../../b", "..", "a\\b", "a\x00b", "a//b", "a/", "", "./a", "a/./b"],
)
def test_unsafe_paths_are_rejected(tmp_path: Path, bad: str) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    sha = store.put_bytes(b"payload").sha256
    cache = ArtifactCache(tmp_path / "cache")
    target = tmp_path / "cache" / "tree"

    with pytest.raises(InvalidInput, match="artifact path") as info:
        cache.materialize(store, {"fine.txt": sha, bad: sha}, target)

    assert repr(bad) in str(info.value)
    assert not target.exists()  # checked before anything is written
    assert not (tmp_path / "x").exists() and not (tmp_path / "cache" / "x").exists()
    with pytest.raises(InvalidInput):
        cache.tree_hash_ok(target, {bad: sha})


def test_bad_sha_is_rejected(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    store = LocalArtifactStore(tmp_path / "artifacts")
    with pytest.raises(InvalidInput, match="sha256"):
        cache.materialize(store, {"a": "../../etc/passwd"}, tmp_path / "tree")
    with pytest.raises(InvalidInput, match="sha256"):
        cache.blob(store, "0" * 63)
    assert not (tmp_path / "tree").exists()


def test_symlinked_folder_cannot_lead_outside(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    sha = store.put_bytes(b"payload").sha256
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "tree"
    target.mkdir()
    (target / "sub").symlink_to(outside)

    with pytest.raises(ArtifactError, match="symbolic link"):
        ArtifactCache(tmp_path / "cache").materialize(store, {"sub/file": sha}, target)
    assert list(outside.iterdir()) == []


def test_folder_in_the_way(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    sha = store.put_bytes(b"payload").sha256
    target = tmp_path / "tree"
    (target / "model").mkdir(parents=True)
    with pytest.raises(ArtifactError, match="folder is in the way"):
        ArtifactCache(tmp_path / "cache").materialize(store, {"model": sha}, target)


def test_tampered_remote_blob_is_not_cached(tmp_path: Path) -> None:
    store = _memory_store()
    cache = ArtifactCache(tmp_path / "cache")
    sha = store.put_bytes(b"genuine").sha256
    store.fs.pipe_file(f"{store.root}/{blob_key(sha)}", b"forged")

    with pytest.raises(IntegrityError, match=sha):
        cache.materialize(store, {"f": sha}, tmp_path / "tree")

    folder = tmp_path / "cache" / "blobs" / sha[:2]
    assert list(folder.iterdir()) == []
    assert not (tmp_path / "tree" / "f").exists()


def test_missing_blob_is_an_artifact_error(tmp_path: Path) -> None:
    store = _memory_store()
    sha = _sha(b"never stored")
    with pytest.raises(ArtifactError, match=sha):
        ArtifactCache(tmp_path / "cache").materialize(store, {"f": sha}, tmp_path / "tree")


def test_tree_hash_ok(tmp_path: Path) -> None:
    store = _memory_store()
    cache = ArtifactCache(tmp_path / "cache")
    entries = _filled(store)
    target = cache.materialize(store, entries, tmp_path / "tree", link=False)
    sizes = {rel: len(data) for rel, data in FILES.items()}
    assert cache.tree_hash_ok(target, entries)
    assert cache.tree_hash_ok(target, entries, sizes)

    wrong_sizes: dict[str, Any] = {**sizes, "model.pkl": 1}
    assert not cache.tree_hash_ok(target, entries, wrong_sizes)
    os.chmod(target / "data" / "train.csv", 0o644)
    (target / "data" / "train.csv").write_bytes(b"shorter")
    assert not cache.tree_hash_ok(target, entries)
    (target / "model.pkl").unlink()
    assert not cache.tree_hash_ok(target, {"model.pkl": entries["model.pkl"]})
    assert not cache.tree_hash_ok(tmp_path / "nowhere", entries)
    assert cache.tree_hash_ok(tmp_path / "nowhere", {})
