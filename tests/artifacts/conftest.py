"""Fixtures for the artifact store suite: a local folder, fsspec memory and a moto S3 server.

``artifact_store`` runs a test once per kind of store; the S3 one is marked ``s3`` and uses a
moto server started once per session on a free port of 127.0.0.1, with a fresh prefix of one
bucket per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.artifacts import ArtifactStore, FsspecArtifactStore, LocalArtifactStore
from s3 import S3Server


def _new_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if kind == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    if kind == "memory":
        return FsspecArtifactStore(f"memory://keel-test-{uuid.uuid4().hex}")
    s3: S3Server = request.getfixturevalue("s3_server")
    return FsspecArtifactStore(f"s3://{s3.bucket}/{uuid.uuid4().hex}", s3.storage_options())


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def artifact_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """An empty artifact store: a local folder, fsspec memory, or a prefix of a moto bucket."""
    store = _new_store(request.param, request, tmp_path)
    yield store
    if isinstance(store, FsspecArtifactStore) and store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)
