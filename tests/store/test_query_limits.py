"""Queries that cost too much are the caller's error, never an outage (issue 19, items 4-5).

On both databases (``store_url``) and in the in-Python matcher:

1. **keel's limits** (:mod:`keel.store.limits`): a query nested deeper than 20, ``$elemMatch``
   deeper than 4, more than 500 conditions, a list of more than 1,000 values, more than 50
   metrics and sort fields is refused with :class:`~keel.errors.QueryTooComplex` naming the
   limit, the same message everywhere, before any SQL is built; a query nested 100,000 deep
   is refused too (no RecursionError). Queries at each limit run, and find what the
   matcher finds: a 1,000-value ``$in`` (one IN list, or one subquery, not a chain SQLite
   refuses), 70 ANDed params, 50 metrics, 20 nested ``$not``.
2. **The database's limits**: what keel lets through but the database cannot compile
   (SQLite's parser stack, PostgreSQL's "stack depth limit exceeded" and "memory
   exhausted") is QueryTooComplex, not StoreUnavailable.
3. **The time budget** (``SqlStore(query_timeout_s=…)``, the server's
   ``server.query_timeout_s``): a read past it stops with QueryTimeout saying so, on
   SQLite (progress handler; ``$regex`` in the ``regex`` engine under a timeout) and on
   PostgreSQL (``statement_timeout``); the connection serves the next read, and a store
   without a budget on the same engine has none.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from keel.entities import Metric
from keel.errors import InvalidInput, QueryTimeout, QueryTooComplex, StoreUnavailable
from keel.store.engine import UNCHANGED, read_connection
from keel.store.limits import (
    MAX_ELEM_MATCH_DEPTH,
    MAX_JOINED_FIELDS,
    MAX_QUERY_CONDITIONS,
    MAX_QUERY_DEPTH,
    MAX_QUERY_VALUES,
)
from keel.store.matching import RUN, Lazy, compile_query
from keel.store.sql import SqlStore
from query_strategies import conditions, kv_values

PROJECT = "limits"
#: 30 characters on which ``(?:[a-z]|[a-c])*[0-9]`` backtracks for minutes in any engine
#: that tries every way to split them (Python's ``re`` and ``regex`` alike)
LONG_TAG = "a" * 30
CATASTROPHIC = "(?:[a-z]|[a-c])*[0-9]"


def _nest(inner: Any, times: int, wrap: Any) -> Any:
    for _ in range(times):  # a loop, not recursion: 100,000 levels are fine to build
        inner = wrap(inner)
    return inner


def not_deep(depth: int, field: str = "params.x") -> dict[str, Any]:
    return {field: _nest({"$eq": 1}, depth, lambda q: {"$not": q})}


def nor_deep(depth: int) -> dict[str, Any]:
    return _nest({"params.x": 1}, depth, lambda q: {"$nor": [q, {"name": "r"}]})


def top_not_deep(depth: int) -> dict[str, Any]:
    return _nest({"name": "r"}, depth, lambda q: {"$not": q})


def elem_match_deep(depth: int) -> dict[str, Any]:
    return {"tags.grid": _nest({"$eq": 1}, depth, lambda q: {"$elemMatch": q})}


def anded(count: int, prefix: str = "params.p") -> dict[str, Any]:
    return {"$and": [{f"{prefix}{i}": {"$gt": 1}} for i in range(count)]}


@pytest.fixture
def store(store_url: str) -> SqlStore:
    """A store with three runs whose params, tags and metrics the queries below reach."""
    store = SqlStore(store_url)
    exp = store.create_experiment(PROJECT, "e")
    for i, (x, team) in enumerate([("7", "a"), (7, "b"), (None, "c")]):
        run = store.create_run(
            exp.id,
            name=f"r{i}",
            tags={"team": team, "grid": [[i, [i]], 2], "long": LONG_TAG},
        )
        params = {"x": x, **{f"p{k}": k + i for k in range(70)}}
        metrics = [Metric(f"m{k}", float(k + i), 1, 1) for k in range(MAX_JOINED_FIELDS)]
        store.log_batch(run.id, params=params, metrics=metrics)
    return store


def _sql(store: SqlStore, query: Any, sort: Any = None) -> list[str] | str:
    try:
        return sorted(r.name for r in store.find_runs(PROJECT, query, sort=sort))
    except InvalidInput as exc:  # a database error (StoreUnavailable…) fails the test
        return f"{type(exc).__name__}: {exc}"


def _matcher(store: SqlStore, query: Any) -> list[str] | str:
    try:
        match = compile_query(query, RUN)
    except InvalidInput as exc:
        return f"{type(exc).__name__}: {exc}"
    exps = {e.id: vars(e) for e in store.find_experiments(PROJECT)}
    records = [
        {**vars(r), "exp": Lazy(lambda r=r: exps[r.experiment_id])}
        for r in store.find_runs(PROJECT)
    ]
    return sorted(r["name"] for r in records if match(r) is True)


# --- 1. keel's limits ------------------------------------------------------------------------

REFUSED: list[tuple[str, Any, Any, str]] = [
    ("$not 21", not_deep(MAX_QUERY_DEPTH + 1), None, "nests more than 20 deep"),
    ("$not 50", not_deep(50), None, "keel allows at most 20: simplify it"),
    ("$not 250", not_deep(250), None, "nests more than 20 deep"),  # was a RecursionError
    ("$nor 21", nor_deep(MAX_QUERY_DEPTH + 1), None, "nests more than 20 deep"),
    ("top $not 21", top_not_deep(MAX_QUERY_DEPTH + 1), None, "nests more than 20 deep"),
    ("$not 100000", not_deep(100_000), None, "nests more than 20 deep"),
    ("$elemMatch 5", elem_match_deep(MAX_ELEM_MATCH_DEPTH + 1), None, "$elemMatch more than 4"),
    ("conditions", anded(MAX_QUERY_CONDITIONS // 2 + 1), None, "more than 500 conditions"),
    (
        "$in 1001",
        {"params.x": {"$in": [str(i) for i in range(MAX_QUERY_VALUES + 1)]}},
        None,
        "$in on 'params.x' lists 1,001 values; keel allows at most 1,000",
    ),
    (
        "$nin 1001",
        {"name": {"$nin": [str(i) for i in range(MAX_QUERY_VALUES + 1)]}},
        None,
        "$nin on 'name' lists 1,001 values",
    ),
    (
        "$all 1001",
        {"tags.team": {"$all": list(range(MAX_QUERY_VALUES + 1))}},
        None,
        "$all on 'tags.team' lists 1,001 values",
    ),
    (
        "metrics 51",
        anded(MAX_JOINED_FIELDS + 1, "metrics.m"),
        None,
        "read 51 metrics and sort fields; keel allows at most 50 (each is a join)",
    ),
    (
        "metrics and sort 51",
        anded(MAX_JOINED_FIELDS - 5, "metrics.m"),
        [(f"params.p{i}", 1) for i in range(6)] + [("name", 1)],
        "read 51 metrics and sort fields",
    ),
]


@pytest.mark.parametrize(
    ("query", "sort", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_queries_beyond_the_limits_are_refused_naming_the_limit(
    store: SqlStore, query: Any, sort: Any, words: str
) -> None:
    refused = _sql(store, query, sort)
    assert isinstance(refused, str) and refused.startswith("QueryTooComplex: "), refused
    assert words in refused
    if sort is None:  # the matcher sorts apart from the query
        assert _matcher(store, query) == refused


def test_a_query_nested_100000_deep_is_refused_not_a_recursion_error(store: SqlStore) -> None:
    query = top_not_deep(100_000)  # the walk stops at level 21: no recursion, no full walk
    with pytest.raises(QueryTooComplex, match="keel allows at most 20"):
        store.find_runs(PROJECT, query)
    with pytest.raises(QueryTooComplex, match="keel allows at most 20"):
        compile_query(query, RUN)


ACCEPTED: list[tuple[str, Any]] = [
    ("$not 20", not_deep(MAX_QUERY_DEPTH)),
    ("$nor 20", nor_deep(MAX_QUERY_DEPTH)),
    ("top $not 20", top_not_deep(MAX_QUERY_DEPTH)),
    ("$elemMatch 4", elem_match_deep(MAX_ELEM_MATCH_DEPTH)),
    ("70 params", anded(70)),
    ("250 params", anded(MAX_QUERY_CONDITIONS // 2)),
    ("50 metrics", anded(MAX_JOINED_FIELDS, "metrics.m")),
    ("$in 1000 params", {"params.x": {"$in": ["7", *map(str, range(MAX_QUERY_VALUES - 1))]}}),
    ("$in 1000 mixed", {"params.x": {"$in": [7, None, *map(str, range(998))]}}),
    ("$in 1000 names", {"name": {"$in": ["r1", *map(str, range(MAX_QUERY_VALUES - 1))]}}),
    ("$nin 1000 tags", {"tags.team": {"$nin": ["b", *map(str, range(999))]}}),
    ("$all 400", {"tags.grid": {"$all": [2] * 400}}),  # each value is a condition
    ("$or 250", {"$or": [{"params.p3": v} for v in range(250)]}),  # 500 conditions
]


@pytest.mark.parametrize("query", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_queries_at_the_limits_run_and_find_what_the_matcher_finds(
    store: SqlStore, query: Any
) -> None:
    found = _sql(store, query)
    assert isinstance(found, list), found
    assert found == _matcher(store, query)


def test_the_long_lists_mean_what_short_ones_mean(store: SqlStore) -> None:
    """A list past 32 items is grouped (√n groups of √n): the same runs as item by item."""
    values = [*range(8, 40), "7", "c", [1], {"a": 1}]
    found = {}
    for name, query in {
        "$in": {"params.x": {"$in": values}},
        "$in null": {"params.x": {"$in": [*values, None]}},
        "$nin": {"params.x": {"$nin": values}},
        "tags $in": {"tags.team": {"$in": values}},
        "names $in": {"name": {"$in": ["r0", "r2", *map(str, range(40))]}},
        "$or": {"$or": [{"params.x": v} for v in values]},
        "$nor": {"$nor": [{"params.x": v} for v in values]},
        "$and": {"$and": [{f"params.p{i}": {"$gte": i}} for i in range(40)]},
    }.items():
        found[name] = _sql(store, query)
        assert found[name] == _matcher(store, query), name
    assert found == {
        "$in": ["r0"],
        "$in null": ["r0", "r2"],
        "$nin": ["r1", "r2"],
        "tags $in": ["r2"],
        "names $in": ["r0", "r2"],
        "$or": ["r0"],
        "$nor": ["r1", "r2"],
        "$and": ["r0", "r1", "r2"],
    }


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(
        st.tuples(
            st.sampled_from(["$and", "$or", "$nor"]),
            st.lists(conditions(), min_size=33, max_size=70),
        ).map(lambda p: {p[0]: p[1]}),
        st.tuples(
            st.sampled_from(["params.opt", "params.lr", "params.layers", "tags.team", "name"]),
            st.sampled_from(["$in", "$nin"]),
            st.lists(kv_values, min_size=33, max_size=80),
        ).map(lambda p: {p[0]: {p[1]: p[2]}}),
    )
)
def test_long_lists_agree_with_the_matcher(sql_runs: SqlStore, data: dict[str, Any]) -> None:
    assert _sql(sql_runs, data) == _matcher(sql_runs, data)


@pytest.fixture(scope="module")
def sql_runs(tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    """The awkward runs of query_strategies (mixed types, NaN, missing keys) on SQLite."""
    from query_strategies import RUNS

    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('limits') / 'keel.db'}")
    exp = store.create_experiment(PROJECT, "grid")
    for name, _exp, kind, status, params, metrics, tags in RUNS:
        run = store.create_run(exp.id, name=name, kind=kind, status=status, tags=tags)
        store.log_batch(
            run.id, params=params, metrics=[Metric(k, v, 1, 1) for k, v in metrics.items()]
        )
    return store


# --- 2. the database's limits -----------------------------------------------------------------


def test_what_sqlite_cannot_compile_is_the_callers_error(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    store.create_experiment(PROJECT, "e")
    # within keel's limits, but 16 $nor around 4 $elemMatch overflow SQLite's parser stack
    query = _nest(elem_match_deep(MAX_ELEM_MATCH_DEPTH), 16, lambda q: {"$nor": [q]})
    with pytest.raises(QueryTooComplex, match=r"\(sqlite: parser stack overflow\)"):
        store.find_runs(PROJECT, query)
    with read_connection(store.engine) as conn:  # nothing was wrong with the store
        assert conn.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT " + "+".join(["1"] * 100_000), "stack depth limit exceeded"),
        ("SELECT " + "(" * 20_000 + "1" + ")" * 20_000, "memory exhausted"),
    ],
    ids=["stack depth", "parser"],
)
@pytest.mark.postgres
def test_what_postgres_cannot_compile_is_the_callers_error(
    pg_url: str, sql: str, words: str
) -> None:
    store = SqlStore(pg_url)
    with pytest.raises(QueryTooComplex, match=words), read_connection(store.engine) as conn:
        conn.execute(text(sql))


def test_an_unreachable_database_is_still_unavailable() -> None:
    """The classification reads what the database said: a refused connection is no query
    of the caller's (nothing listens on port 1)."""
    store = SqlStore("postgresql://keel@127.0.0.1:1/keel?connect_timeout=5", query_timeout_s=1)
    with pytest.raises(StoreUnavailable) as caught:
        store.find_runs(PROJECT, {"params.x": {"$in": list(range(1000))}})
    assert not isinstance(caught.value, InvalidInput)


# --- 3. the time budget -----------------------------------------------------------------------

BUDGET_S = 1.0
#: how far past the budget a stopped read may end (a loaded machine's scheduling, the check
#: interval of the progress handler and of the regex engine)
SLACK_S = 4.0


def _slow_sql(dialect: str) -> str:
    if dialect == "sqlite":  # counts to 10⁹: minutes
        return (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 1000000000) SELECT count(*) FROM c"
        )
    return "SELECT pg_sleep(60)"


@pytest.mark.slow
def test_a_read_past_the_budget_stops_with_query_timeout(store_url: str) -> None:
    store = SqlStore(store_url, query_timeout_s=BUDGET_S)
    store.create_experiment(PROJECT, "e")
    started = time.perf_counter()
    with (
        pytest.raises(QueryTimeout) as caught,
        read_connection(store.engine, store.query_timeout_s) as conn,
    ):
        conn.execute(text(_slow_sql(store.engine.dialect.name))).all()
    assert time.perf_counter() - started < BUDGET_S + SLACK_S
    assert str(caught.value).startswith(
        "the query ran past 1 s (server.query_timeout_s) and was stopped: narrow it"
    )
    assert [e.name for e in store.find_experiments(PROJECT)] == ["e"]  # the next read runs


@pytest.mark.slow
def test_a_regex_that_backtracks_for_ever_stops_at_the_budget(sqlite_url: str) -> None:
    """SQLite's REGEXP runs ``regex`` with the budget left as its timeout (Python's ``re``
    cannot be stopped: this pattern ran for minutes, holding the GIL)."""
    store = SqlStore(sqlite_url, query_timeout_s=BUDGET_S)
    exp = store.create_experiment(PROJECT, "e")
    store.create_run(exp.id, name="r", tags={"long": LONG_TAG})
    started = time.perf_counter()
    with pytest.raises(QueryTimeout, match="ran past 1 s"):
        store.find_runs(PROJECT, {"tags.long": {"$regex": CATASTROPHIC}})
    assert time.perf_counter() - started < BUDGET_S + SLACK_S
    # the pattern: exponential in Python's re, linear in regex
    assert store.find_runs(PROJECT, {"tags.long": {"$regex": "(a|a)*b"}}) == []
    assert [r.name for r in store.find_runs(PROJECT, {"tags.long": {"$regex": "^(a|a)*$"}})] == [
        "r"
    ]


@pytest.mark.postgres
def test_postgres_keeps_the_budget_per_store_on_a_shared_engine(pg_url: str) -> None:
    """A budgeted store sets statement_timeout on the pooled connection once; a store
    without a budget on the same engine resets it; an account's read leaves it alone."""
    budgeted, free = SqlStore(pg_url, query_timeout_s=2.5), SqlStore(pg_url)

    def setting(timeout_s: Any) -> str:
        with read_connection(budgeted.engine, timeout_s) as conn:
            return str(conn.execute(text("SHOW statement_timeout")).scalar())

    assert setting(budgeted.query_timeout_s) == "2500ms"
    assert setting(UNCHANGED) == "2500ms"
    assert setting(free.query_timeout_s) == "0"
    assert setting(UNCHANGED) == "0"
