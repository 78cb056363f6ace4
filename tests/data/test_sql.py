"""SQL data sources and sinks on SQLite and a throwaway PostgreSQL: no mocks.

Every test that can runs on both databases (the ``db_url`` fixture); the few that need a
PostgreSQL feature (schemas, roles with passwords, typed columns) are marked ``postgres``.
Configs are real keel.yml files read with :func:`keel.config.load_config`.
"""

from __future__ import annotations

import json
import math
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from keel.config import load_config
from keel.data import DataCatalog
from keel.errors import ConfigError, DataError, InvalidInput

MakeCatalog = Callable[..., DataCatalog]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The database: each test runs once on SQLite and once on PostgreSQL."""
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url"}[request.param]
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def make_catalog(tmp_path: Path) -> Iterator[MakeCatalog]:
    """``make_catalog(url, body, env=None, extra="")``: a catalog of a keel.yml written here.

    ``extra`` holds more keys of the ``dbms: db:`` entry (indented by 4 spaces); every
    catalog is closed (its engines disposed) at the end of the test.
    """
    made: list[DataCatalog] = []

    def make(
        url: str, body: str, env: dict[str, str] | None = None, extra: str = ""
    ) -> DataCatalog:
        path = tmp_path / f"keel-{len(made)}.yml"
        path.write_text(f"dbms:\n  db:\n    connection_string: '{url}'\n{extra}{body}")
        made.append(DataCatalog(load_config(path, env=env or {})))
        return made[-1]

    yield make
    for catalog in made:
        catalog.close()


def backend(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def run_sql(url: str, *statements: str) -> None:
    """Run ``statements`` in one transaction, outside keel."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def table_names(url: str, schema: str | None = None) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", ignore_index=True)


ORDERS = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "customer": [387, 387, 5, 6],
        "total": [10.5, 7.25, 3.0, 4.0],
        "note": ["a", "O'Brien", "c", "d"],
    }
)

BODY = """\
datasources:
  by_customer: {type: dbms.db, query: 'select * from orders where customer = :customer order by id'}
  by_note: {type: dbms.db, query: 'select * from orders where note = :note order by id'}
  all: {type: dbms.db, table: orders}
datasinks:
  orders: {type: dbms.db, table: orders}
  one_by_one: {type: dbms.db, table: orders, options: {chunksize: 1}}
  replace: {type: dbms.db, table: orders, if_exists: replace}
  fresh: {type: dbms.db, table: orders, if_exists: fail}
"""

# --------------------------------------------------------------------------- round trips


def test_a_sink_writes_and_a_source_reads_back(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    assert table_names(db_url) == ["orders"]
    got = data.source("all").get_dataframe()
    assert list(got.columns) == ["id", "customer", "total", "note"]  # no index column
    assert_frame_equal(by_id(got), ORDERS)
    mine = data.source("by_customer").get_dataframe({"customer": 387})
    assert_frame_equal(mine, ORDERS.iloc[:2])


def test_a_frame_with_an_index_is_written_without_it(
    db_url: str, make_catalog: MakeCatalog
) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS.set_index(pd.Index([10, 20, 30, 40], name="idx")))
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)


def test_append_appends(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    later = ORDERS.assign(id=ORDERS["id"] + 100)
    data.sink("orders").put_dataframe(later)
    assert_frame_equal(
        by_id(data.source("all").get_dataframe()), pd.concat([ORDERS, later], ignore_index=True)
    )


def test_replace_replaces(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    other = pd.DataFrame({"id": [9], "kind": ["new"]})  # another shape: the table is recreated
    data.sink("replace").put_dataframe(other)
    assert_frame_equal(data.source("all").get_dataframe(), other)


def test_fail_creates_a_missing_table_and_refuses_an_existing_one(
    db_url: str, make_catalog: MakeCatalog
) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("fresh").put_dataframe(ORDERS)
    with pytest.raises(DataError, match=r"^data sink 'fresh': .*orders.* already exists"):
        data.sink("fresh").put_dataframe(ORDERS.head(1))
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)


@pytest.mark.postgres
def test_schema_qualified_tables_on_postgres(pg_url: str, make_catalog: MakeCatalog) -> None:
    run_sql(pg_url, "create schema sales")
    data = make_catalog(
        pg_url,
        "datasources:\n"
        "  orders: {type: dbms.db, table: sales.orders}\n"
        "  big: {type: dbms.db, query: 'select id from sales.orders where total > :least'}\n"
        "datasinks:\n"
        "  orders: {type: dbms.db, table: sales.orders}\n"
        "  replace: {type: dbms.db, table: sales.orders, if_exists: replace}\n",
    )
    data.sink("orders").put_dataframe(ORDERS)
    assert table_names(pg_url, schema="sales") == ["orders"]
    assert table_names(pg_url) == []  # nothing landed in public
    assert_frame_equal(by_id(data.source("orders").get_dataframe()), ORDERS)
    assert data.source("big").get_dataframe({"least": 5})["id"].tolist() == [1, 2]
    data.sink("replace").put_dataframe(ORDERS.head(1))
    assert_frame_equal(data.source("orders").get_dataframe(), ORDERS.head(1))


# --------------------------------------------------------------------------- params


def test_params_are_bound_never_formatted(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    by_note = data.source("by_note")
    assert by_note.get_dataframe({"note": "x' OR '1'='1"}).empty  # injected SQL: no match
    assert by_note.get_dataframe({"note": "a'; drop table orders; --"}).empty
    assert by_note.get_dataframe({"note": "O'Brien"})["id"].tolist() == [2]  # a quote is data
    assert by_note.get_dataframe({"note": "a"})["id"].tolist() == [1]
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)  # nothing dropped


def test_a_missing_param_is_named(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(
        db_url,
        "datasources:\n  q: {type: dbms.db, query: 'select * from orders "
        "where customer = :customer and total > :least'}\n  all: {type: dbms.db, table: orders}\n",
    )
    with pytest.raises(
        InvalidInput, match=r"^data source 'q': the query needs params least; pass them"
    ):
        data.source("q").get_dataframe({"customer": 387})
    with pytest.raises(InvalidInput, match=r"needs params customer, least"):
        data.source("q").get_dataframe()
    with pytest.raises(InvalidInput, match=r"^data source 'all': a table source takes no params"):
        data.source("all").get_dataframe({"x": 1})


def test_a_table_sink_takes_no_params(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    with pytest.raises(InvalidInput, match=r"^data sink 'orders': a table sink takes no params"):
        data.sink("orders").put_dataframe(ORDERS, params={"x": 1})
    assert table_names(db_url) == []


# --------------------------------------------------------------------------- NULLs, chunks

NULLS_TABLE = """create table readings (
    id integer primary key, qty integer, price double precision, label text, comment text)"""
NULLS_ROWS = """insert into readings values
    (1, 5, 1.5, 'a', null), (2, null, null, null, null), (3, 7, 2.5, 'c', null)"""


def is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def test_nulls_come_back_as_nan(db_url: str, make_catalog: MakeCatalog) -> None:
    run_sql(db_url, NULLS_TABLE, NULLS_ROWS)
    data = make_catalog(
        db_url,
        "datasources:\n  t: {type: dbms.db, table: readings}\n"
        "  q: {type: dbms.db, query: 'select * from readings where id >= :low order by id'}\n",
    )
    for got in (
        by_id(data.source("t").get_dataframe()),
        data.source("q").get_dataframe({"low": 1}),
        pd.concat(data.source("q").get_dataframe({"low": 1}, chunksize=2), ignore_index=True),
    ):
        assert got["qty"].dtype == np.float64 and got["price"].dtype == np.float64
        assert is_nan(got.loc[1, "qty"]) and is_nan(got.loc[1, "price"])
        assert got["qty"].tolist()[::2] == [5.0, 7.0]
        # Text: NaN, never None; a column of NULLs only is NaN throughout.
        assert got.loc[0, "label"] == "a" and is_nan(got.loc[1, "label"])
        assert all(is_nan(v) for v in got["comment"])
        assert not any(v is None for column in got.columns for v in got[column])


def test_chunks_have_the_asked_size(db_url: str, make_catalog: MakeCatalog) -> None:
    rows = pd.DataFrame({"id": range(10), "customer": [1, 2] * 5, "note": list("abcdefghij")})
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(rows)
    chunks = list(data.source("all").get_dataframe(chunksize=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert_frame_equal(by_id(pd.concat(chunks, ignore_index=True)), rows)
    mine = list(data.source("by_customer").get_dataframe({"customer": 1}, chunksize=2))
    assert [c["id"].tolist() for c in mine] == [[0, 2], [4, 6], [8]]


# --------------------------------------------------------------------------- failures


def test_a_failing_query_shows_the_database_message(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(
        db_url,
        "datasources:\n  bad: {type: dbms.db, query: 'select * from no_such_table'}\n"
        "  bad_table: {type: dbms.db, table: no_such_table}\n",
    )
    said = {
        "sqlite": "no such table: no_such_table",
        "postgresql": 'relation "no_such_table" does not exist',
    }[backend(db_url)]
    for name in ("bad", "bad_table"):
        with pytest.raises(DataError) as err:
            data.source(name).get_dataframe()
        message = str(err.value)
        assert message.startswith(f"data source '{name}': the query failed on database 'db' (")
        assert message.endswith(said)
    with pytest.raises(DataError, match=said):
        list(data.source("bad").get_dataframe(chunksize=2))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_an_unreachable_database_names_the_connection(
    db_url: str, make_catalog: MakeCatalog, tmp_path: Path
) -> None:
    if backend(db_url) == "sqlite":
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}"
        shown = f"({url})"
    else:  # a closed port, and a password in the URL that must not be shown
        url = f"postgresql+psycopg://keel:topsecret@127.0.0.1:{_closed_port()}/nowhere"
        shown = "(postgresql+psycopg://keel:***@127.0.0.1:"
    data = make_catalog(
        url,
        "datasources:\n  all: {type: dbms.db, table: t}\ndatasinks:\n  all: {type: dbms.db, table: t}\n",
    )
    for call in (
        lambda: data.source("all").get_dataframe(),
        lambda: data.sink("all").put_dataframe(ORDERS),
    ):
        with pytest.raises(DataError) as err:
            call()
        message = str(err.value)
        assert "cannot connect to database 'db' " + shown in message
        assert "topsecret" not in message


def test_a_failed_write_midway_leaves_the_table_as_it_was(
    db_url: str, make_catalog: MakeCatalog
) -> None:
    run_sql(
        db_url,
        "create table orders (id integer primary key, customer integer not null, "
        "total double precision, note text)",
    )
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    # One INSERT per row (options: chunksize: 1): rows 10 and 11 are in before row 3 fails.
    clash = ORDERS.assign(id=[10, 11, 1, 12])  # id 1 exists
    with pytest.raises(
        DataError, match=r"^data sink 'one_by_one': writing table orders failed on database 'db'"
    ):
        data.sink("one_by_one").put_dataframe(clash)
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)
    no_customer = ORDERS.assign(id=[20, 21, 22, 23], customer=[1, None, 1, 1])  # NOT NULL
    with pytest.raises(DataError, match=r"(?i)not[ -]null"):
        data.sink("one_by_one").put_dataframe(no_customer)
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)


def test_a_failed_replace_keeps_the_old_table(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    data.sink("orders").put_dataframe(ORDERS)
    unstorable = pd.DataFrame({"id": [1, 2], "blob": ["fine", object()]})  # row 2 cannot be bound
    with pytest.raises(DataError, match=r"^data sink 'replace': writing table orders failed"):
        data.sink("replace").put_dataframe(unstorable)
    # The drop, the create and the inserts are one transaction: all of it is rolled back.
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS)


def test_a_failed_first_write_leaves_no_table(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(db_url, BODY)
    with pytest.raises(DataError, match=r"^data sink 'orders': writing table orders failed"):
        data.sink("orders").put_dataframe(pd.DataFrame({"id": [1, 2], "blob": ["ok", object()]}))
    assert table_names(db_url) == []


@pytest.mark.postgres
def test_a_value_of_the_wrong_type_rolls_back_on_postgres(
    pg_url: str, make_catalog: MakeCatalog
) -> None:
    run_sql(pg_url, "create table orders (id integer primary key, customer integer)")
    data = make_catalog(pg_url, BODY)
    data.sink("orders").put_dataframe(ORDERS[["id", "customer"]])
    too_big = pd.DataFrame({"id": [10, 11], "customer": [5, 2**40]})  # row 11 overflows
    with pytest.raises(DataError, match=r"integer out of range"):
        data.sink("one_by_one").put_dataframe(too_big)
    assert_frame_equal(by_id(data.source("all").get_dataframe()), ORDERS[["id", "customer"]])


# --------------------------------------------------------------------------- dbms settings


def test_options_reach_the_driver(db_url: str, make_catalog: MakeCatalog, tmp_path: Path) -> None:
    if backend(db_url) == "postgresql":
        data = make_catalog(
            db_url,
            "datasources:\n  app: {type: dbms.db, "
            "query: \"select current_setting('application_name') as app\"}\n",
            extra="    options: {application_name: keel-test}\n",
        )
        assert data.source("app").get_dataframe()["app"].tolist() == ["keel-test"]
        return
    # SQLite: sqlite3.connect(timeout=…) is how long a locked database is waited for (5 s
    # by default); with 0.2 the read gives up at once.
    run_sql(db_url, "create table t (x integer)")
    data = make_catalog(
        db_url,
        "datasources:\n  t: {type: dbms.db, table: t}\n",
        extra="    options: {timeout: 0.2}\n",
    )
    locker = sqlite3.connect(tmp_path / "keel.db", isolation_level=None)
    try:
        locker.execute("begin exclusive")
        start = time.monotonic()
        with pytest.raises(DataError, match="database is locked"):
            data.source("t").get_dataframe()
        assert time.monotonic() - start < 3
    finally:
        locker.close()
    assert data.source("t").get_dataframe().empty


def test_extra_keys_reach_create_engine(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(
        db_url,
        "datasources:\n  one: {type: dbms.db, query: 'select 1 as one'}\n",
        extra="    echo: false\n    pool_size: 2\n    pool_timeout: 7\n",
    )
    assert data.source("one").get_dataframe()["one"].tolist() == [1]
    engine = data.context.engines["db"]
    assert engine.echo is False
    assert engine.pool.size() == 2
    assert engine.pool.timeout() == 7


def test_a_bad_engine_setting_names_the_connection(db_url: str, make_catalog: MakeCatalog) -> None:
    data = make_catalog(
        db_url, "datasources:\n  all: {type: dbms.db, table: t}\n", extra="    pool_sise: 3\n"
    )
    with pytest.raises(ConfigError, match=r"^dbms\.db: bad engine setting: .*pool_sise"):
        data.source("all").get_dataframe()


def test_a_missing_driver_is_a_config_error(make_catalog: MakeCatalog) -> None:
    data = make_catalog(
        "nosuchdialect://u@h/db", "datasources:\n  all: {type: dbms.db, table: t}\n"
    )
    with pytest.raises(ConfigError, match=r"dbms\.db: no SQLAlchemy dialect for nosuchdialect"):
        data.source("all").get_dataframe()


# --------------------------------------------------------------------------- secrets


@pytest.fixture
def password_role(pg_url: str) -> Iterator[str]:
    """A login role with password ``env-secret-pw``, checked by the server (scram-sha-256).

    The throwaway server trusts every local connection; a line for this role alone is put
    first in its pg_hba.conf (and taken out afterwards), so a wrong password is refused.
    """
    import psycopg

    role = f"keel_reader_{uuid.uuid4().hex[:8]}"
    run_sql(
        pg_url,
        f"create role {role} login password 'env-secret-pw'",
        "create table t (x integer)",
        "insert into t values (1)",
        f"grant select on t to {role}",
    )
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        hba = Path(conn.execute(sa.text("show hba_file")).scalar_one())
    original = hba.read_text()

    def reload() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("select pg_reload_conf()"))

    url = sa.make_url(pg_url)
    wrong = f"host=127.0.0.1 port={url.port} dbname={url.database} user={role} password=nope"
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{original}")
    try:
        reload()
        deadline = time.monotonic() + 10
        while True:  # the server reloads its config in the background
            try:
                psycopg.connect(wrong, connect_timeout=5).close()
            except psycopg.OperationalError:
                break
            assert time.monotonic() < deadline, "pg_hba.conf reload did not take effect"
            time.sleep(0.05)
        yield sa.make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    finally:
        hba.write_text(original)
        reload()
        engine.dispose()


@pytest.mark.postgres
def test_a_password_from_the_environment_connects_and_stays_secret(
    password_role: str, make_catalog: MakeCatalog
) -> None:
    body = (
        "datasources:\n  t: {type: dbms.db, table: t}\n"
        "  bad: {type: dbms.db, query: 'select * from nothing'}\n"
    )
    extra = "    password_var: READER_PW\n"
    data = make_catalog(password_role, body, env={"READER_PW": "env-secret-pw"}, extra=extra)
    assert data.source("t").get_dataframe()["x"].tolist() == [1]  # the password was used
    with pytest.raises(DataError) as err:
        data.source("bad").get_dataframe()
    assert 'relation "nothing" does not exist' in str(err.value)
    assert "env-secret-pw" not in str(err.value) and ":***@" in str(err.value)
    snapshot = data.config.snapshot()
    assert "env-secret-pw" not in json.dumps(snapshot)
    assert snapshot["dbms"]["db"]["password_var"] == "READER_PW"
    assert "password" not in snapshot["dbms"]["db"]
    assert "env-secret-pw" not in repr(data.config)

    # The same config with a wrong secret: the server refuses it, and the message hides it.
    refused = make_catalog(password_role, body, env={"READER_PW": "wrong-secret"}, extra=extra)
    with pytest.raises(DataError) as err:
        refused.source("t").get_dataframe()
    message = str(err.value)
    assert message.startswith("data source 't': cannot connect to database 'db' (")
    assert "password authentication failed" in message
    assert "wrong-secret" not in message and ":***@" in message


def test_an_unset_password_variable_is_a_config_error(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "keel.yml"
    path.write_text(f"dbms:\n  db:\n    connection_string: '{sqlite_url}'\n    password_var: PW\n")
    with pytest.raises(ConfigError, match="environment variable PW is not set"):
        load_config(path, env={})


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
