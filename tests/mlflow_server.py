"""A real MLflow tracking server for tests: ``mlflow server`` on 127.0.0.1 with a SQLite
backend and its artifact proxy, one per session.

The ``mlflow_server`` fixture starts it (about 3 s, two processes: the CLI and one uvicorn
worker) with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` (otherwise it starts job runners
too) and stops the whole process group at the end. Tests stay apart by using a fresh keel
project each (a prefix of every MLflow name, see keel.store.mlflow.codec).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MlflowServer:
    """A running server: its keel store URL, plain HTTP URL and folders."""

    url: str  # mlflow+http://127.0.0.1:PORT
    http_url: str  # http://127.0.0.1:PORT
    artifacts: Path  # --artifacts-destination
    log: Path

    @staticmethod
    def new_project() -> str:
        """A project name no other test uses."""
        return f"t-{uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mlflow_command() -> list[str] | None:
    script = Path(sys.executable).with_name("mlflow")
    if script.is_file():
        return [str(script)]
    found = shutil.which("mlflow")
    return [found] if found else None


def start_mlflow_server(folder: Path) -> tuple[subprocess.Popen[bytes], MlflowServer]:
    """Start ``mlflow server`` with its files in ``folder``; wait until it answers."""
    import httpx2 as httpx

    command = _mlflow_command()
    if command is None:
        pytest.skip("the mlflow CLI is not installed (make install)")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    artifacts = folder / "artifacts"
    log = folder / "server.log"
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
        env.pop(name, None)
    args = [
        *command,
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = MlflowServer(
        f"mlflow+http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", artifacts, log
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited ({proc.returncode}): {log.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{server.http_url}/health", timeout=1.0).status_code == 200:
                return proc, server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_mlflow_server(proc)
            raise RuntimeError(f"mlflow server did not start in {STARTUP_TIMEOUT_S} s: {log}")
        time.sleep(0.2)


def stop_mlflow_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (the CLI and its uvicorn worker)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One MLflow tracking server (SQLite + artifact proxy) for the whole session."""
    proc, server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        stop_mlflow_server(proc)
