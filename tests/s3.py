"""A moto S3 server for tests: one per session, on a free port of 127.0.0.1.

The ``s3_server`` fixture lives in the root conftest; this module holds what it returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "keel-test"


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server."""

    endpoint: str
    bucket: str

    def new_url(self) -> str:
        """A fresh ``s3://<bucket>/<uuid>`` URL: an artifact store of one test's own."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex}"

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
