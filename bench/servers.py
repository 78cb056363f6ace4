"""How the benchmarks start the tracking servers they compare, and the accounts keel's needs.

``mlflow server`` and ``keel server`` are started the same way by the wire, tracking-load and
UI-scale benchmarks; what differs (backend URI, workers, extra environment) is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.serving_bench import BIN, Variant

# MLflow 3 starts a job runner beside the server unless told not to; it is not what is measured.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def mlflow_server(
    folder: Path,
    port: int,
    backend_uri: str,
    *,
    options: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Variant:
    """``mlflow server`` on ``backend_uri``, artifacts under ``folder``, on 127.0.0.1:``port``."""
    return Variant(
        name="mlflow",
        command=[
            str(BIN / "mlflow"),
            "server",
            *("--backend-store-uri", backend_uri),
            *options,
            *("--artifacts-destination", str(folder / "mlflow-artifacts")),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        ready_path="/health",
        paths=[],
        body={},
        cwd=folder,
        env={**MLFLOW_SERVER_ENV, **(env or {})},
    )


def keel_server(folder: Path, port: int, store: str, *, options: Sequence[str] = ()) -> Variant:
    """``keel server`` on ``store`` (a folder or database URL) on 127.0.0.1:``port``."""
    return Variant(
        name="keel",
        command=[
            str(BIN / "keel"),
            "server",
            *("--store", store),
            *options,
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning"),
        ],
        ready_path="/login",
        paths=[],
        body={},
        cwd=folder,
    )


def api_token(store: str, user: str, password: str, role: str, token_name: str) -> str:
    """An API token of ``user`` (created with ``role`` if the store lacks it) in ``store``."""
    from keel.errors import NotFound
    from keel.server.auth import Accounts
    from keel.store.accounts import AccountStore

    accounts = Accounts(AccountStore(store))
    try:
        accounts.store.get_user(user)
    except NotFound:
        accounts.add_user(user, password, role)
    _record, token = accounts.create_token(user, token_name)
    return token


def form_login(http: Any, user: str, password: str) -> None:
    """Log ``http`` (an httpx or Starlette test client) into keel's UI through its form."""
    import re

    page = http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if csrf is None:
        raise RuntimeError("keel's login page has no csrf_token field")
    answer = http.post(
        "/login",
        data={"name": user, "password": password, "csrf_token": csrf.group(1), "next": "/"},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"the benchmark user could not log in ({answer.status_code})")
