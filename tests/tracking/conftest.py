"""Fixtures for the tracking client suite: one client per test, on SQLite, PostgreSQL and
a real keel platform server (``http``: the REST API over an embedded store, with the
artifacts going through the server too), and the team deployment: ``pg+s3`` (metadata on
PostgreSQL, artifacts on a moto S3 server) and ``http-pg+s3`` (a server on those), and
``mlflow``: a real MLflow tracking server (keel's MLflow backend, a fresh project per test).

A test that a backend cannot run carries ``@pytest.mark.unsupported_on("mlflow", reason=...)``:
it is a strict xfail there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import Client
from keel_server import running_server
from team import TeamStores

TEAM = [pytest.mark.postgres, pytest.mark.s3]  # CI fails a skipped postgres test
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    "http",
    pytest.param("pg+s3", marks=TEAM),
    pytest.param("http-pg+s3", marks=TEAM),
    pytest.param("mlflow", marks=pytest.mark.mlflow),
]


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    _mark_unsupported(request, request.param)
    if request.param == "mlflow":
        yield from _mlflow_client(request, tmp_path)
        return
    if request.param == "http":
        yield from _http_client(tmp_path)
        return
    if request.param in ("pg+s3", "http-pg+s3"):
        yield from _team_client(request, tmp_path)
        return
    store_url = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgres": "pg_url"}[request.param]
    )
    c = Client(
        store=store_url,
        artifacts=str(tmp_path / "artifacts"),
        cache_dir=tmp_path / "cache",
        project="test",
    )
    yield c
    c.close()


def _http_client(tmp_path: Path) -> Iterator[Client]:
    """A client of a fresh server; the server keeps its blobs in ``tmp_path/artifacts``,
    where tests count them, and the client names no artifact store of its own."""
    from keel.artifacts.http import HttpArtifactStore
    from keel.server.settings import ServerSettings
    from keel.store.http import HttpStore

    settings = ServerSettings(
        store=str(tmp_path / "server"),
        artifacts=str(tmp_path / "artifacts"),
        work_dir=tmp_path / "server" / "work",
    )
    with running_server(settings) as server:
        c = Client(
            store=server.url, token=server.token, cache_dir=tmp_path / "cache", project="test"
        )
        # guard: the suite must really go through the API, not fall back to a local store
        assert isinstance(c.store, HttpStore) and isinstance(c.artifact_store, HttpArtifactStore)
        try:
            yield c
        finally:
            c.close()


def _team_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """Metadata in a fresh PostgreSQL database, artifacts under a fresh S3 prefix: used
    directly (``pg+s3``) or by a real server the client talks to (``http-pg+s3``)."""
    team: TeamStores = request.getfixturevalue("team_stores")
    store, artifacts = team.new_store(), team.new_artifacts()
    if request.param == "http-pg+s3":
        from keel.server.settings import ServerSettings

        settings = ServerSettings(
            store=store,
            artifacts=artifacts,
            storage_options=team.storage_options(),
            work_dir=tmp_path / "server" / "work",
        )
        with running_server(settings) as server:
            c = Client(
                store=server.url, token=server.token, cache_dir=tmp_path / "cache", project="test"
            )
            try:
                yield c
            finally:
                c.close()
        return
    c = Client(
        store=store,
        artifacts=artifacts,
        storage_options=team.storage_options(),
        cache_dir=tmp_path / "cache",
        project="test",
    )
    yield c
    c.close()


def _mark_unsupported(request: pytest.FixtureRequest, backend: str) -> None:
    """``@pytest.mark.unsupported_on("mlflow", reason=...)``: a strict xfail on that backend
    (it must fail there, so a test that starts passing loses its marker)."""
    for marker in request.node.iter_markers("unsupported_on"):
        if backend in marker.args:
            reason = marker.kwargs.get("reason") or "not supported"
            request.applymarker(
                pytest.mark.xfail(
                    reason=f"unsupported on {backend}: {reason}",
                    raises=marker.kwargs.get("raises"),
                    strict=True,
                )
            )


def _mlflow_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    """A client of the session's MLflow server (``mlflow server``, SQLite backend, artifact
    proxy) in a fresh project, with its blobs under a folder of its own, where tests count
    them."""
    from keel.artifacts.mlflow import MlflowArtifactStore
    from keel.store.mlflow import MlflowStore

    server = request.getfixturevalue("mlflow_server")
    project = server.new_project()
    c = Client(
        store=server.url,
        cache_dir=tmp_path / "cache",
        project=project,
        storage_options={"root": f"keel-tests/{project}/blobs"},
    )
    # guard: the suite must really go through MLflow, not fall back to a local store
    assert isinstance(c.store, MlflowStore) and isinstance(c.artifact_store, MlflowArtifactStore)
    try:
        yield c
    finally:
        c.close()
