"""What keel's tests of MLflow's REST API share (tests/server/test_mlflow_wire*.py).

``serving(root)`` starts a real keel server (tests/keel_server.py) with MLflow's client
pointed at it, quiet and failing fast; the :class:`Wire` it yields has MLflow's client, bare
HTTP calls with the admin token, and keel's own client on the same store. When the block ends,
MLflow's fluent state (active runs, the experiment last set) is cleared, so the next module's
server does not inherit it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from keel_server import RunningServer, running_server

if TYPE_CHECKING:
    import requests
    from mlflow import MlflowClient

    import keel
    from keel.server.settings import ServerSettings

#: keep MLflow's client on the server under test, quiet and failing fast
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

#: MLflow and the libraries it loads warn about their own deprecations
QUIET = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


class Wire:
    """A running keel server, MLflow's client on it, bare HTTP with its token, keel's client.

    A bare call's ``path`` is the server's (``/api/2.0/…``), or relative to MLflow's API
    (``runs/log-inputs``); a second positional argument is the JSON body.
    """

    def __init__(self, running: RunningServer, settings: ServerSettings) -> None:
        from mlflow import MlflowClient

        self.url = running.url
        self.token = running.token
        self.store = running.store
        self.artifacts = str(settings.artifacts)
        self.proxy = self.url + PROXY
        self.client: MlflowClient = MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def keel(self) -> keel.Client:
        """keel's own client on the server's store (the same database and files)."""
        import keel

        return keel.Client(store=self.store, artifacts=self.artifacts)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        import requests

        if body is not None:
            kwargs["json"] = body
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = self.url + (path if path.startswith("/") else f"{API}/{path}")
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def query(self, path: str, **params: Any) -> requests.Response:
        """A GET with ``params`` as its query string (a list repeats its field)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@contextlib.contextmanager
def serving(root: Path, **settings: Any) -> Iterator[Wire]:
    """A keel server on a fresh store under ``root`` (more ``ServerSettings`` fields as
    keywords), with MLflow's client set to call it with the admin token."""
    import mlflow

    from keel.server.settings import ServerSettings

    server_settings = ServerSettings(
        store=str(root / "store"), artifacts=str(root / "artifacts"), **settings
    )
    with pytest.MonkeyPatch.context() as patch, running_server(server_settings) as running:
        for key, value in MLFLOW_ENV.items():
            patch.setenv(key, value)
        patch.setenv("MLFLOW_TRACKING_TOKEN", running.token)
        mlflow.set_tracking_uri(running.url)
        try:
            yield Wire(running, server_settings)
        finally:
            reset_fluent_state()


def reset_fluent_state() -> None:
    """End MLflow's active runs and forget the experiment last set (the fluent API keeps it
    in a global and in MLFLOW_EXPERIMENT_ID) and the tracking URI."""
    import mlflow

    while mlflow.active_run():
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(None)
