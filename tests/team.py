"""The team deployment in tests: metadata on the throwaway PostgreSQL, artifacts on moto S3.

The ``team_stores`` fixture (session-scoped, registered by the root conftest) hands out a
fresh store pair per server or client: :meth:`TeamStores.new_store` is a new database
already at keel's newest schema (copied from a template migrated once per session: 0.15 s
instead of 0.45 s to create and migrate each), :meth:`TeamStores.new_artifacts` a new
prefix in the session's bucket. A store created empty and migrated on first use is what
the ``postgres`` backends test.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pg import PostgresServer
from s3 import S3Server

TEMPLATE = "keel_team_template"


@dataclass
class TeamStores:
    """Fresh PostgreSQL databases and S3 prefixes, one pair per server or client."""

    postgres: PostgresServer
    s3: S3Server
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _template_ready: bool = False

    def new_store(self) -> str:
        """The URL of a new database at keel's newest schema, with no records."""
        import psycopg

        with self._lock:
            if not self._template_ready:
                self._make_template()
            name = f"keel_team_{next(self._counter)}"
            with psycopg.connect(self.postgres.conninfo(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')  # type: ignore[arg-type]
        return self.postgres.url(name)

    def _make_template(self) -> None:
        import psycopg
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from keel.store.engine import upgrade

        with psycopg.connect(self.postgres.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')  # type: ignore[arg-type]
        # NullPool: no connection may stay open on a template while it is copied
        engine = create_engine(self.postgres.url(TEMPLATE), poolclass=NullPool)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        self._template_ready = True

    def new_artifacts(self) -> str:
        """A new ``s3://`` prefix: an empty artifact store."""
        return self.s3.new_url()

    def storage_options(self) -> dict[str, Any]:
        return self.s3.storage_options()


@pytest.fixture(scope="session")
def team_stores(postgres_server: PostgresServer, s3_server: S3Server) -> TeamStores:
    """PostgreSQL databases and S3 prefixes for the team-deployment backends."""
    return TeamStores(postgres_server, s3_server)
