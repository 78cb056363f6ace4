"""Fixtures for the tracking client suite: one client per test, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel import Client


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[Client]:
    c = Client(
        store=store_url,
        artifacts=str(tmp_path / "artifacts"),
        cache_dir=tmp_path / "cache",
        project="test",
    )
    yield c
    c.close()
