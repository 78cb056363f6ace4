"""The throwaway PostgreSQL fixtures: one server per session, one fresh database per test."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pg import PostgresServer


@pytest.fixture
def other_pg_url(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


@pytest.mark.postgres
def test_each_pg_url_is_a_distinct_empty_database(pg_url: str, other_pg_url: str) -> None:
    assert pg_url != other_pg_url
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    first, second = sa.create_engine(pg_url), sa.create_engine(other_pg_url)
    try:
        with first.begin() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar_one() == (
                sa.make_url(pg_url).database
            )
            conn.execute(sa.text("create table only_here (id integer primary key)"))
            conn.execute(sa.text("insert into only_here values (1)"))

        assert sa.inspect(first).has_table("only_here")
        assert not sa.inspect(second).has_table("only_here")
        assert sa.inspect(second).get_table_names() == []
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_server_runs_with_throwaway_settings(postgres_server: PostgresServer, pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            settings = dict(
                conn.execute(
                    sa.text(
                        "select name, setting from pg_settings where name in "
                        "('fsync', 'synchronous_commit', 'listen_addresses', 'port')"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "listen_addresses": "127.0.0.1",
        "port": str(postgres_server.port),
    }
    assert postgres_server.folder is not None and postgres_server.folder.is_dir()


# Not marked as a whole: store_url's "postgres" parameter carries the marker itself.
def test_store_url_runs_on_both_backends(store_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["store_url"]
    expected = "sqlite:///" if backend == "sqlite" else "postgresql+psycopg://"
    assert store_url.startswith(expected)
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()
