"""Where the server suites' servers keep their records: ``embedded`` (SQLite and an artifact
folder under the test's tmp_path, as each suite names them) and ``pg+s3``, the team
deployment: a fresh database on the session's throwaway PostgreSQL and a fresh prefix in
the session's moto S3 bucket for every server a test makes (see tests/team.py).

A suite asks for ``server_backend`` and builds its settings with
``server_backend.settings(store=…, artifacts=…, **more)``: on ``embedded`` that is exactly
``ServerSettings(store=…, artifacts=…, **more)``; on ``pg+s3`` the store and artifacts are
swapped for the PostgreSQL database and the S3 prefix. The fixture is module-scoped, so a
suite's module-scoped records are built once per backend and its tests run grouped by it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from keel.server.settings import ServerSettings
    from team import TeamStores

#: the system Chromium Playwright drives (nothing is downloaded)
CHROMIUM = os.environ.get("KEEL_CHROMIUM", "/usr/bin/chromium")
TEAM = "pg+s3"
SERVER_BACKENDS = ["embedded", pytest.param(TEAM, marks=[pytest.mark.postgres, pytest.mark.s3])]


@dataclass(frozen=True)
class ServerBackend:
    """Makes the settings of a server on one backend."""

    name: str
    team: TeamStores | None = None

    def settings(self, **kwargs: Any) -> ServerSettings:
        """``ServerSettings(**kwargs)``, with its stores on this backend."""
        from keel.server.settings import ServerSettings

        if self.team is not None:
            kwargs.update(
                store=self.team.new_store(),
                artifacts=self.team.new_artifacts(),
                storage_options=self.team.storage_options(),
            )
        return ServerSettings(**kwargs)


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def server_backend(request: pytest.FixtureRequest) -> ServerBackend:
    if request.param == TEAM:
        return ServerBackend(TEAM, request.getfixturevalue("team_stores"))
    return ServerBackend(request.param)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (marker ``browser``); skipped without it,
    which under CI=true fails the run."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or KEEL_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
