"""Fixtures for the tracking client suite: one client per test, on SQLite, PostgreSQL and
a real keel platform server (``http``: the REST API over an embedded store, with the
artifacts going through the server too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import Client
from keel_server import running_server

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "http"]


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    if request.param == "http":
        yield from _http_client(tmp_path)
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
