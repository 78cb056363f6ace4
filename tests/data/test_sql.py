"""SQL data sources and sinks on SQLite and a throwaway PostgreSQL: no mocks."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from keel.config import parse_config
from keel.data import DataCatalog
from keel.errors import ConfigError, DataError, InvalidInput


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The database: each test runs once on SQLite and once on PostgreSQL."""
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url"}[request.param]
    return str(request.getfixturevalue(fixture))


def catalog(url: str, body: str, env: dict[str, str] | None = None, extra: str = "") -> DataCatalog:
    head = f"dbms:\n  db:\n    connection_string: '{url}'\n{extra}"
    return DataCatalog(parse_config(head + body, env=env or {}))


ORDERS = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "customer": [387, 387, 5, 6],
        "total": [10.5, np.nan, 3.0, 4.0],
        "note": ["a", None, "c", "d"],
    }
)

BODY = """\
datasources:
  by_customer: {type: dbms.db, query: 'select * from orders where customer = :customer order by id'}
  all: {type: dbms.db, table: orders}
datasinks:
  orders: {type: dbms.db, table: orders}
  replace: {type: dbms.db, table: orders, if_exists: replace}
  fresh: {type: dbms.db, table: orders, if_exists: fail}
"""


def test_a_sink_writes_and_a_source_reads_back(db_url: str) -> None:
    data = catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    got = data.source("all").get_dataframe()
    assert list(got.columns) == ["id", "customer", "total", "note"]  # no index column
    assert_frame_equal(got.sort_values("id", ignore_index=True), ORDERS, check_dtype=False)
    mine = data.source("by_customer").get_dataframe({"customer": 387})
    assert mine["id"].tolist() == [1, 2]


def test_append_replace_and_fail(db_url: str) -> None:
    data = catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    data.sink("orders").put_dataframe(ORDERS)
    assert len(data.source("all").get_dataframe()) == 8
    data.sink("replace").put_dataframe(ORDERS.head(1))
    assert len(data.source("all").get_dataframe()) == 1
    with pytest.raises(DataError, match=r"data sink 'fresh'.*already exists"):
        data.sink("fresh").put_dataframe(ORDERS)


def test_params_are_bound_never_formatted(db_url: str) -> None:
    data = catalog(db_url, BODY.replace("customer = :customer", "note = :customer"))
    data.sink("orders").put_dataframe(ORDERS)
    assert data.source("by_customer").get_dataframe({"customer": "x' OR '1'='1"}).empty
    assert data.source("by_customer").get_dataframe({"customer": "a"})["id"].tolist() == [1]
    with pytest.raises(
        InvalidInput, match=r"data source 'by_customer': the query needs params customer"
    ):
        data.source("by_customer").get_dataframe()
    with pytest.raises(InvalidInput, match="a table source takes no params"):
        data.source("all").get_dataframe({"x": 1})


def test_nulls_come_back_as_nan(db_url: str) -> None:
    data = catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    got = data.source("all").get_dataframe().sort_values("id", ignore_index=True)
    assert np.isnan(got.loc[1, "total"])
    assert got.loc[1, "note"] is np.nan or (
        isinstance(got.loc[1, "note"], float) and np.isnan(got.loc[1, "note"])
    )
    assert got["note"].isna().tolist() == [False, True, False, False]


def test_chunks(db_url: str) -> None:
    data = catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    chunks = list(data.source("all").get_dataframe(chunksize=3))
    assert [len(c) for c in chunks] == [3, 1]


def test_a_failing_query_shows_the_database_message(db_url: str) -> None:
    data = catalog(
        db_url, "datasources:\n  bad: {type: dbms.db, query: 'select * from no_such_table'}\n"
    )
    with pytest.raises(
        DataError, match=r"data source 'bad': the query failed on database 'db' .*no_such_table"
    ):
        data.source("bad").get_dataframe()


def test_a_failed_write_leaves_the_table_as_it_was(db_url: str) -> None:
    data = catalog(db_url, BODY)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "create table orders (id integer primary key, customer integer, total float, note text)"
            )
        )
    engine.dispose()
    data.sink("orders").put_dataframe(ORDERS)
    clash = pd.DataFrame(
        {
            "id": [10, 11, 1],
            "customer": [1, 1, 1],
            "total": [1.0, 1.0, 1.0],
            "note": ["x", "y", "z"],
        }
    )
    with pytest.raises(
        DataError, match=r"data sink 'orders': writing table orders failed on database 'db'"
    ):
        data.sink("orders").put_dataframe(clash)  # id 1 exists: the rows 10 and 11 must not stay
    assert sorted(data.source("all").get_dataframe()["id"]) == [1, 2, 3, 4]


@pytest.mark.postgres
def test_schemas_options_and_engine_kwargs_on_postgres(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create schema sales"))
    engine.dispose()
    data = catalog(
        pg_url,
        "datasources:\n  app: {type: dbms.db, query: \"select current_setting('application_name') as app\"}\n"
        "  orders: {type: dbms.db, table: sales.orders}\n"
        "datasinks:\n  orders: {type: dbms.db, table: sales.orders}\n",
        extra="    options: {application_name: keel-test}\n    pool_size: 2\n",
    )
    assert data.source("app").get_dataframe()["app"].tolist() == ["keel-test"]  # connect_args
    data.sink("orders").put_dataframe(ORDERS)
    assert len(data.source("orders").get_dataframe()) == 4
    assert data.context.engines["db"].pool.size() == 2  # create_engine kwargs


def test_a_bad_engine_setting_names_the_connection(sqlite_url: str) -> None:
    data = catalog(
        sqlite_url, "datasources:\n  all: {type: dbms.db, table: t}\n", extra="    pool_sise: 3\n"
    )
    with pytest.raises(ConfigError, match=r"dbms\.db: bad engine setting: .*pool_sise"):
        data.source("all").get_dataframe()


def test_a_missing_driver_is_a_config_error(tmp_path: Path) -> None:
    data = catalog("nosuchdialect://u@h/db", "datasources:\n  all: {type: dbms.db, table: t}\n")
    with pytest.raises(ConfigError, match=r"dbms\.db: no SQLAlchemy dialect for nosuchdialect"):
        data.source("all").get_dataframe()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_an_unreachable_database_names_the_connection_and_masks_the_password(pg_url: str) -> None:
    url = f"postgresql+psycopg://keel:topsecret@127.0.0.1:{_closed_port()}/nowhere"
    data = catalog(url, "datasources:\n  all: {type: dbms.db, table: t}\n")
    with pytest.raises(DataError) as err:
        data.source("all").get_dataframe()
    message = str(err.value)
    assert message.startswith(
        "data source 'all': cannot connect to database 'db' (postgresql+psycopg://keel:***@127.0.0.1:"
    )
    assert "topsecret" not in message


@pytest.mark.postgres
def test_a_password_from_the_environment_connects_and_stays_secret(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create role reader login password 'env-secret-pw'"))
        conn.execute(sa.text("create table t (x integer)"))
        conn.execute(sa.text("insert into t values (1)"))
        conn.execute(sa.text("grant select on t to reader"))
    engine.dispose()
    reader = sa.make_url(pg_url).set(username="reader", password=None)
    as_reader = reader.render_as_string(hide_password=False)
    body = "datasources:\n  t: {type: dbms.db, table: t}\n  bad: {type: dbms.db, query: 'select * from nothing'}\n"
    config_extra = "    password_var: READER_PW\n"
    data = catalog(as_reader, body, env={"READER_PW": "env-secret-pw"}, extra=config_extra)
    assert data.source("t").get_dataframe()["x"].tolist() == [1]
    with pytest.raises(DataError) as err:
        data.source("bad").get_dataframe()
    assert "env-secret-pw" not in str(err.value) and "***" in str(err.value)
    assert "env-secret-pw" not in repr(data.config.snapshot())
    assert data.config.snapshot()["dbms"]["db"]["password_var"] == "READER_PW"


def test_an_oracle_connection_can_be_given_by_parts() -> None:
    from keel.config.models import DbmsSection
    from keel.data.sql import build_url, masked

    section = DbmsSection(
        type="oracle",
        host="db.example.com",
        port=1251,
        service_name="svc",
        user="scott",
        password="tiger",
    )
    url = build_url("ora", section)
    assert masked(url) == "oracle+oracledb://scott:***@db.example.com:1251?service_name=svc"
    assert url.password == "tiger"
