"""Fixtures of the deploy tests: a moto server standing in for AWS (S3, SageMaker and
sagemaker-runtime), one per session on a free port of 127.0.0.1 in a process of its own,
emptied before each test that uses it, and fake credentials so that no call can reach real
AWS."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"


@dataclass(frozen=True)
class AwsServer:
    """A running moto server."""

    endpoint: str

    def reset(self) -> None:
        """Forget every bucket, job, model and endpoint (moto's reset API)."""
        self._post("/moto-api/reset", {})

    def queue_invoke_results(self, *results: dict[str, Any]) -> None:
        """What the next ``invoke_endpoint`` calls answer (moto's canned results: each a
        mapping of Body, ContentType, InvokedProductionVariant, CustomAttributes)."""
        body = {"account_id": "123456789012", "region": REGION, "results": list(results)}
        self._post("/moto-api/static/sagemaker/endpoint-results", body)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status in (200, 201), answer.read()


def _fake_aws_env(env: pytest.MonkeyPatch) -> None:
    """Fake credentials and no config files: botocore finds nothing of the user's."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/keel-test-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/keel-test-aws-credentials",
    }.items():
        env.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _aws_session_server() -> Iterator[AwsServer]:
    """moto in a process of its own: moto keeps its state per process, and resetting it
    here must not empty the session's S3 server (tests/s3.py) the other tests share."""
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    env = pytest.MonkeyPatch()
    _fake_aws_env(env)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = AwsServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.reset()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("the moto server did not start") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(10)
        env.undo()


@pytest.fixture
def aws_server(_aws_session_server: AwsServer, monkeypatch: pytest.MonkeyPatch) -> AwsServer:
    """The moto server, empty, with fake AWS credentials in the environment (and any
    ``AWS_ENDPOINT_URL*`` the user has set removed: tests name the server themselves)."""
    _fake_aws_env(monkeypatch)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    _aws_session_server.reset()
    return _aws_session_server
