"""Fixtures for the artifact store suite: a local folder, fsspec memory and a moto S3 server.

``artifact_store`` runs a test once per kind of store; the S3 one is marked ``s3`` and uses a
moto server started once per session on a free port of 127.0.0.1, with a fresh prefix of one
bucket per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts import ArtifactStore, FsspecArtifactStore, LocalArtifactStore

BUCKET = "keel-test"


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server."""

    endpoint: str
    bucket: str

    def storage_options(self) -> dict[str, Any]:
        return {
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            "key": "testing",
            "secret": "testing",
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server with one bucket, for the whole session."""
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    env = pytest.MonkeyPatch()
    env.setenv("AWS_ACCESS_KEY_ID", "testing")
    env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_CONFIG_FILE", "/nonexistent/keel-test-aws-config")
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/keel-test-aws-credentials")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3Server(endpoint, BUCKET)
    finally:
        server.stop()
        env.undo()


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
