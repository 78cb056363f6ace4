"""A pytest plugin that runs MLflow's own server tests against ``keel server``.

MLflow's files (``tests/tracking/test_rest_tracking.py``, ``test_model_registry.py``,
``test_mlflow_artifacts.py``) start MLflow's server in their fixtures. This plugin swaps only
those fixtures (``mlflow_client``, ``client``, ``artifacts_server``) for a fresh keel server
per test (per module for ``artifacts_server``, as MLflow scopes it), reached with an API token
(``MLFLOW_TRACKING_TOKEN``); the tests themselves run unmodified. Tests of the parts keel does
not claim (MLflow's GenAI API, its server internals) are deselected from ``out_of_scope.txt``,
each with its reason.

Run it through ``python conformance/mlflow/run.py MLFLOW_CHECKOUT`` (see its ``--help``).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from keel_out_of_scope import pytest_collection_modifyitems  # noqa: F401 (the hook)

STARTUP_TIMEOUT_S = 20.0

#: keep MLflow's client on the server under test, quiet and failing fast
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


class KeelServer(NamedTuple):
    url: str
    token: str
    store: str
    artifacts: str


@contextlib.contextmanager
def keel_server(root: Path, mlflow_artifact_root: str | None = None) -> Iterator[KeelServer]:
    """A fresh ``keel server`` (store and artifacts under ``root``) in a thread on 127.0.0.1,
    with an admin and its API token; stopped when the block ends. ``mlflow_artifact_root``
    is MLflow's ``--default-artifact-root`` (None: files go through keel's proxy)."""
    import uvicorn

    from keel.server.app import create_app
    from keel.server.auth import Accounts, hash_password
    from keel.server.settings import ServerSettings
    from keel.store.accounts import AccountStore

    settings = ServerSettings(
        store=str(root / "store"),
        artifacts=str(root / "artifacts"),
        mlflow_artifact_root=mlflow_artifact_root,
    )
    accounts = Accounts(AccountStore(settings.store))
    accounts.store.add_user("admin", _admin_hash(hash_password), "admin")
    _token_id, token = accounts.create_token("admin", "mlflow-conformance")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("keel server did not start")
        time.sleep(0.01)
    try:
        yield KeelServer(f"http://127.0.0.1:{port}", token, settings.store, str(settings.artifacts))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


_HASH: list[str] = []


def _admin_hash(hash_password: Any) -> str:
    if not _HASH:  # argon2 costs ~50 ms; the tests use the token, never the password
        _HASH.append(hash_password("conformance-password"))
    return _HASH[0]


@contextlib.contextmanager
def _as_client(
    root: Path, monkeypatch: pytest.MonkeyPatch, mlflow_artifact_root: str | None = None
) -> Iterator[KeelServer]:
    for key, value in MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    with keel_server(root, mlflow_artifact_root) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.token)
        _send_token(server, monkeypatch)
        yield server


def _send_token(server: KeelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's tests also call the server with bare ``requests`` (MLflow's server asks for no
    credentials): those calls carry the token too, as MLflow's client does."""
    import requests

    request = requests.Session.request

    def with_token(session: Any, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if str(url).startswith(server.url):
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = f"Bearer {server.token}"
            kwargs["headers"] = headers
        return request(session, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", with_token)


# The swapped fixtures: same names and parameters as MLflow's, a keel server behind them.


@pytest.fixture(name="mlflow_client")
def keel_mlflow_client(
    store_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    # MLflow's fixture serves the database its conftest makes the tracking URI, so the CLI
    # and fluent calls of a test reach what the server holds: here they reach keel server.
    # As MLflow's, experiments keep their files under tmp_path (the client writes them).
    with (
        _as_client(tmp_path / "keel", monkeypatch, tmp_path.as_uri()) as server,
        _use_tracking_uri(server.url),
    ):
        yield MlflowClient(server.url)


@pytest.fixture(name="client", params=["file", "sqlalchemy"])
def keel_registry_client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    from mlflow import MlflowClient

    if request.param == "file":
        pytest.skip("FileStore is no longer supported.")
    with _as_client(tmp_path / "keel", monkeypatch) as server:
        yield MlflowClient(server.url)


class ArtifactsServer(NamedTuple):
    """MLflow's tuple: the tests read the proxied files from ``artifacts_destination``."""

    backend_store_uri: str
    default_artifact_root: str
    artifacts_destination: str
    url: str
    process: Any


@pytest.fixture(name="artifacts_server", scope="module")
def keel_artifacts_server() -> Iterator[ArtifactsServer]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as patch,
        _as_client(Path(tmp), patch) as server,
    ):
        yield ArtifactsServer(
            backend_store_uri=server.url,
            default_artifact_root=f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
            artifacts_destination=str(_proxy_root(server.artifacts)),
            url=server.url,
            process=None,
        )


def _proxy_root(artifacts: str) -> Path:
    """Where keel keeps files uploaded to proxy paths outside any run."""
    from keel.server.mlflow.artifacts import proxy_root

    return proxy_root(artifacts)


SWAPPED = {
    "mlflow_client": keel_mlflow_client,
    "client": keel_registry_client,
    "artifacts_server": keel_artifacts_server,
}


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    """MLflow's test modules, with their server fixtures replaced by keel's."""

    class KeelModule(pytest.Module):
        def _getobj(self) -> Any:
            module = super()._getobj()
            for name, fixture in SWAPPED.items():
                if hasattr(module, name):
                    setattr(module, name, fixture)
            return module

    return KeelModule.from_parent(parent, path=module_path)
