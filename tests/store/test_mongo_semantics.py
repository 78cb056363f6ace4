"""Params and tags as mlopus keeps them, queried as MongoDB queries them.

1. Unit cases on both stores: nested dicts addressed by dotted paths, datetimes that come
   back as datetimes and order in ``$gt``, MongoDB's list semantics (any element matches,
   a list operand matches the whole list, ``$elemMatch``, ``$all``, ``$size``), null.
2. A differential test: Hypothesis writes a few runs whose tags are random documents
   (nested dicts, lists, datetimes, numbers, strings, booleans, None) and asks random
   queries; the SQL store (SQLite and PostgreSQL) and keel's Python matcher must find the
   same runs as ``mongomock``, an independent implementation of MongoDB's query language.
3. Push-down: the SQL store answers with one SELECT whose WHERE holds the whole query;
   the Python matcher is never called, and no value or path reaches the SQL text.

Where keel means something other than MongoDB on purpose, the generator leaves it out:

* comparisons across types (MongoDB orders across BSON types only for ``$gt`` with
  ``MinKey``/``MaxKey`` and sorts mixed types; keel never matches across types) and ``$gt``
  with booleans, null, lists or dicts (keel refuses them with InvalidInput);
* floats with an integral value inside lists and dicts (``[1.0]``): keel compares lists and
  dicts by their JSON, where ``1.0`` is not ``1``; MongoDB compares numbers by value;
* dict key order: keel keeps dicts with sorted keys, MongoDB compares them in order;
* NaN (MongoDB: NaN equals NaN; keel: NaN equals nothing, as SQL's NULL);
* paths through lists of dicts (``tags.objs.x``, ``tags.l.0``): MongoDB reaches every
  element's ``x`` and numeric indexes; keel reaches into dicts only (use ``$elemMatch``).

Cost: ``KEEL_FUZZ_EXAMPLES`` (default 150) examples on SQLite, a third on PostgreSQL;
``KEEL_FUZZ_EXAMPLES=1500 .venv/bin/python -m pytest tests/store/test_mongo_semantics.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event

from keel.errors import InvalidInput
from keel.store import matching
from keel.store.codec import decode, dumps, encode, encode_query, loads
from keel.store.matching import RUN, compile_query
from keel.store.sql import SqlStore
from keel.store.values import decode_value, encode_value

mongomock = pytest.importorskip("mongomock")

EXAMPLES = int(os.environ.get("KEEL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PG_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))

T0 = datetime(2024, 4, 1, 9, 0, 0)


def _store_with(store: SqlStore, project: str, docs: list[dict[str, Any]]) -> dict[str, int]:
    """Runs with ``docs`` as their tags (and params), in a new project: run id → doc index."""
    exp = store.create_experiment(project, "e", {}).id
    ids = {}
    for i, doc in enumerate(docs):
        run = store.create_run(
            exp, name=f"r{i}", kind="tracking", status="running", tags=doc, author="ana"
        )
        if doc:
            store.log_batch(run.id, params=doc)
        ids[run.id] = i
    return ids


def _found(store: SqlStore, project: str, ids: dict[str, int], query: dict[str, Any]) -> list[int]:
    return sorted(ids[r.id] for r in store.find_runs(project, query))


# --- 1. unit cases ----------------------------------------------------------------------------

DOCS: list[dict[str, Any]] = [
    {
        "ns": {"key": 42, "s": "x", "deep": {"k": "v"}},
        "l": ["foo", "bar"],
        "when": T0,
        "n": 1,
        "objs": [{"x": 1, "y": 2}],
    },
    {
        "ns": {"key": 41},
        "l": ["baz"],
        "when": T0 - timedelta(days=30),
        "n": None,
        "objs": [{"x": 1}, {"x": 3, "y": 5}],
    },
    {"l": [], "n": [1, None], "ns": [1, 2], "when": [T0 + timedelta(days=1)]},
    {"a.b": "flat", "a": {"b": "nested"}},
]

UNIT_CASES: list[tuple[dict[str, Any], list[int]]] = [
    ({"tags.ns.key": 42}, [0]),
    ({"tags.ns.key": {"$gt": 41}}, [0]),
    ({"tags.ns.key": {"$gte": 41, "$lt": 42}}, [1]),
    ({"tags.ns.key": {"$ne": 42}}, [1, 2, 3]),
    ({"tags.ns.deep.k": "v"}, [0]),
    ({"tags.ns.deep": {"k": "v"}}, [0]),
    ({"tags.ns": {"key": 41}}, [1]),
    ({"tags.ns": 2}, [2]),
    ({"tags.ns.key": {"$exists": True}}, [0, 1]),
    ({"tags.ns.key": {"$exists": False}}, [2, 3]),
    ({"tags.l": "foo"}, [0]),
    ({"tags.l": ["baz"]}, [1]),
    ({"tags.l": ["bar", "foo"]}, []),
    ({"tags.l": {"$in": ["baz", "nope"]}}, [1]),
    ({"tags.l": {"$nin": ["foo"]}}, [1, 2, 3]),
    ({"tags.l": {"$ne": "foo"}}, [1, 2, 3]),
    ({"tags.l": {"$size": 0}}, [2]),
    ({"tags.l": {"$size": 2}}, [0]),
    ({"tags.l": {"$all": ["foo", "bar"]}}, [0]),
    ({"tags.l": {"$all": []}}, []),
    ({"tags.l": {"$regex": "^ba"}}, [0, 1]),
    ({"tags.l": {"$elemMatch": {"$regex": "^b", "$ne": "bar"}}}, [1]),
    ({"tags.l": {"$gt": "c"}}, [0]),
    ({"tags.objs": {"$elemMatch": {"x": 1, "y": {"$gt": 1}}}}, [0]),
    ({"tags.objs": {"$elemMatch": {"x": 3, "y": 5}}}, [1]),
    ({"tags.objs": {"$elemMatch": {"x": 1, "y": 5}}}, []),
    ({"tags.objs": {"x": 1}}, [1]),  # a whole element: {"x": 1, "y": 2} is not {"x": 1}
    ({"tags.objs": {"x": 1, "y": 2}}, [0]),
    ({"tags.when": T0}, [0]),
    ({"tags.when": {"$gt": T0 - timedelta(days=1)}}, [0, 2]),
    ({"tags.when": {"$lt": T0}}, [1]),
    ({"tags.when": {"$gte": T0.replace(tzinfo=UTC)}}, [0, 2]),
    ({"tags.when": {"$gt": "2000"}}, []),  # text never orders with datetimes
    ({"tags.when": {"$date": "2024-04-01T09:00:00.000000"}}, [0]),
    ({"tags.n": None}, [1, 2, 3]),
    ({"tags.n": {"$ne": None}}, [0]),
    ({"tags.n": 1}, [0, 2]),
    ({"tags.n": {"$in": [None]}}, [1, 2, 3]),
    ({"tags.a.b": "flat"}, [3]),
    ({"tags.a.b": "nested"}, [3]),
    ({"tags.a.b": {"$ne": "flat"}}, [0, 1, 2]),
    ({"params.ns.key": 42, "params.l": "foo"}, [0]),
    ({"$or": [{"tags.ns.key": 41}, {"tags.l": {"$size": 0}}]}, [1, 2]),
    ({"tags.ns.key": {"$not": {"$gt": 41}}}, [1, 2, 3]),
]


@pytest.fixture
def unit_store(store_url: str) -> Iterator[tuple[SqlStore, dict[str, int]]]:
    store = SqlStore(store_url)
    yield store, _store_with(store, "unit", DOCS)


def test_queries_reach_into_values_as_mongodb_does(
    unit_store: tuple[SqlStore, dict[str, int]],
) -> None:
    store, ids = unit_store
    records = _records(store, "unit")
    for query, expected in UNIT_CASES:
        assert _found(store, "unit", ids, query) == expected, query
        match = compile_query(query, RUN)
        assert sorted(ids[r["id"]] for r in records if match(r)) == expected, query


def test_nested_values_and_datetimes_come_back_as_logged(store_url: str) -> None:
    store = SqlStore(store_url)
    aware = datetime(2024, 4, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    tags = {"ns": {"key": 42, "when": [T0]}, "at": aware, "naive": T0}
    _store_with(store, "back", [tags])
    (run,) = store.find_runs("back")
    assert run.tags == {"ns": {"key": 42, "when": [T0]}, "at": aware, "naive": T0}
    assert run.tags["at"].tzinfo is UTC and run.tags["naive"].tzinfo is None
    assert run.params["ns"]["key"] == 42
    # the wire form of the REST API and the http store gives the same values back
    wire = loads(dumps(encode(run)))
    assert decode(type(run), wire).tags == run.tags
    assert loads(dumps(encode_query({"tags.at": {"$gt": T0}}))) == {
        "tags.at": {"$gt": {"$date": "2024-04-01T09:00:00.000000"}}
    }


def test_values_and_operands_keel_refuses(store_url: str) -> None:
    store = SqlStore(store_url)
    ids = _store_with(store, "bad", [{"a": [1]}])
    with pytest.raises(InvalidInput, match=r"\$date"):
        store.create_run(
            store.find_experiments("bad")[0].id,
            name="x",
            kind="tracking",
            status="running",
            tags={"d": {"$date": "x", "y": 1}},
            author="ana",
        )
    for query, message in [
        ({"tags.a": {"$size": -1}}, r"\$size on 'tags.a' takes 0 or more"),
        ({"tags.a": {"$size": "1"}}, r"\$size on 'tags.a' takes a whole number"),
        ({"tags.a": {"$all": 1}}, r"\$all on 'tags.a' takes a list"),
        ({"tags.a": {"$elemMatch": {"$gt": 1, "x": 1}}}, "not both"),
        ({"tags.a": {"$elemMatch": []}}, r"\$elemMatch on 'tags.a' takes a non-empty dict"),
        ({"tags.a": {"$gt": [1]}}, "takes a number or a string"),
        ({"tags.a": {"$gt": {"x": 1}}}, "takes a number or a string"),
        ({"tags.a": {"$date": "yesterday"}}, "is not a datetime"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            _found(store, "bad", ids, query)
        with pytest.raises(InvalidInput, match=message):
            compile_query(query, RUN)


def test_nested_metrics_are_kept_flat_and_queried_by_dotted_key(store_url: str) -> None:
    from keel.entities import Metric

    store = SqlStore(store_url)
    ids = _store_with(store, "metrics", [{}, {}])
    first, second = sorted(ids, key=ids.__getitem__)
    store.log_batch(first, metrics=[Metric("ns.acc", 0.9, 0, 1)])
    store.log_batch(second, metrics=[Metric("ns.acc", 0.5, 0, 1)])
    assert _found(store, "metrics", ids, {"metrics.ns.acc": {"$gt": 0.8}}) == [0]


# --- 2. differential test against mongomock ---------------------------------------------------

_texts = st.sampled_from(["", "a", "ab", "b", "B", "é", "a\nb"])
# no 0 or 1: mongomock compares with Python's ==, where False == 0 and True == 1 (MongoDB
# and keel never match a boolean with a number)
_numbers = st.sampled_from([-3, -2, 2, 3, 7, -1.5, 0.25, 2.5])
# mongomock keeps datetimes to the millisecond, as BSON does
_dates = st.integers(-3, 3).map(lambda d: T0 + timedelta(hours=d, milliseconds=d * 7))
_scalars = st.one_of(_texts, _numbers, st.booleans(), st.none(), _dates)
_lists = st.lists(_scalars, max_size=3)
_dicts = st.dictionaries(st.sampled_from(["x", "y"]), st.one_of(_scalars, _lists), max_size=2).map(
    lambda d: dict(sorted(d.items()))
)
_values = st.one_of(_scalars, _lists, _dicts)
_objs = st.lists(
    st.dictionaries(st.sampled_from(["x", "y"]), _scalars, max_size=2).map(
        lambda d: dict(sorted(d.items()))
    ),
    max_size=3,
)
_documents = st.fixed_dictionaries({}, optional={"a": _values, "b": _values, "objs": _objs})

_FIELDS = ["tags.a", "tags.b", "tags.a.x", "tags.b.y", "params.a", "tags.zz"]
_PATTERNS = st.sampled_from(["^a", "b$", "é", "^$", "A"])
_orderable = st.one_of(_texts, _numbers, _dates)


def _operands(field: str) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(values, scalars) to compare ``field`` with. mongomock finds no value at ``a.x``
    when ``a`` is a scalar, so ``{"a.x": None}`` does not match there; MongoDB (and keel)
    take ``a.x`` as missing, which null matches. Null is not asked of dotted paths."""
    values = _values.filter(lambda v: v != {})  # mongomock: {"f": {}} matches everything
    if field.count(".") < 2:
        return values, _scalars
    return values.filter(lambda v: v is not None), _scalars.filter(lambda v: v is not None)


def _operators(field: str) -> st.SearchStrategy[dict[str, Any]]:
    values, scalars = _operands(field)
    ops: list[st.SearchStrategy[dict[str, Any]]] = [
        values.map(lambda v: {"$eq": v}),
        values.map(lambda v: {"$ne": v}),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), _orderable).map(
            lambda p: {p[0]: p[1]}
        ),
        st.lists(scalars, max_size=3).map(lambda v: {"$in": v}),
        st.lists(scalars, max_size=3).map(lambda v: {"$nin": v}),
        st.lists(scalars, min_size=1, max_size=2).map(lambda v: {"$all": v}),  # []: see top
        st.booleans().map(lambda v: {"$exists": v}),
        st.integers(0, 3).map(lambda v: {"$size": v}),
        _PATTERNS.map(lambda p: {"$regex": p}),
        st.tuples(st.sampled_from(["$gt", "$lt", "$eq", "$ne"]), _orderable).map(
            lambda p: {"$elemMatch": {p[0]: p[1]}}
        ),
    ]
    return st.one_of(ops)


@st.composite
def _conditions(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    choice = draw(st.integers(0, 9 if depth < 2 else 6))
    if choice <= 2:
        field = draw(st.sampled_from(_FIELDS))
        return {field: draw(_operands(field)[0])}
    if choice <= 5:
        field = draw(st.sampled_from(_FIELDS))
        spec = draw(_operators(field))
        # mongomock skips $not when a dotted path meets a scalar (MongoDB: missing, so $not
        # matches), so $not is asked of top-level fields only
        if draw(st.booleans()) and choice == 5 and field.count(".") < 2:
            spec = {"$not": spec}
        return {field: spec}
    if choice == 6:
        inner = draw(
            st.one_of(
                _scalars.map(lambda v: {"x": v}),
                _orderable.map(lambda v: {"x": {"$gt": v}}),
                st.tuples(_scalars, _scalars).map(lambda p: {"x": p[0], "y": p[1]}),
            )
        )
        return {"tags.objs": {"$elemMatch": inner}}
    operator = draw(st.sampled_from(["$and", "$or", "$nor"]))
    return {operator: draw(st.lists(_conditions(depth + 1), min_size=1, max_size=2))}


def _size(value: Any, size: int) -> bool:
    """MongoDB's $size: only a list has a size (mongomock gives a string or a number size 1
    and a dict its key count)."""
    return isinstance(value, list) and len(value) == size


def _mongo_matches(docs: list[dict[str, Any]], query: dict[str, Any]) -> list[int]:
    import mongomock.filtering

    mongomock.filtering._filterer_inst._operator_map["$size"] = _size
    collection = mongomock.MongoClient().db.runs
    collection.insert_many(
        [{"_id": i, "tags": dict(doc), "params": dict(doc)} for i, doc in enumerate(docs)]
    )
    return sorted(d["_id"] for d in collection.find(query))


def _records(store: SqlStore, project: str) -> list[dict[str, Any]]:
    return [vars(r) for r in store.find_runs(project)]


_projects = count()


def _check(store: SqlStore, docs: list[dict[str, Any]], query: dict[str, Any]) -> None:
    project = f"m{next(_projects)}"
    ids = _store_with(store, project, docs)
    expected = _mongo_matches(docs, query)
    assert _found(store, project, ids, query) == expected, (docs, query)
    match = compile_query(query, RUN)
    found = sorted(ids[r["id"]] for r in _records(store, project) if match(r))
    assert found == expected, ("python matcher", docs, query)


@pytest.fixture(scope="module")
def sqlite_mongo(tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path_factory.mktemp('mongo') / 'keel.db'}")


@pytest.fixture(scope="module")
def postgres_mongo(postgres_server: Any) -> SqlStore:
    return SqlStore(postgres_server.new_database())


@FUZZ
@given(docs=st.lists(_documents, min_size=1, max_size=4), query=_conditions())
def test_sqlite_matches_like_mongomock(
    sqlite_mongo: SqlStore, docs: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    _check(sqlite_mongo, docs, query)


@pytest.mark.postgres
@PG_FUZZ
@given(docs=st.lists(_documents, min_size=1, max_size=4), query=_conditions())
def test_postgres_matches_like_mongomock(
    postgres_mongo: SqlStore, docs: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    _check(postgres_mongo, docs, query)


# --- 3. push-down -----------------------------------------------------------------------------


def test_queries_on_values_run_in_sql(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqlStore(store_url)
    ids = _store_with(store, "push", DOCS)
    statements: list[str] = []

    @sa_event.listens_for(store.engine, "before_cursor_execute")
    def _keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def _refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the SQL store filtered in Python")

    monkeypatch.setattr(matching, "compile_query", _refuse)
    query = {
        "tags.ns.deep.k": "v",
        "tags.l": {"$elemMatch": {"$regex": "^f"}, "$size": 2},
        "tags.when": {"$gt": T0 - timedelta(days=1)},
        "tags.objs": {"$elemMatch": {"x": 1}},
    }
    before = len(statements)
    found = store.find_runs("push", query, limit=1)
    assert [ids[r.id] for r in found] == [0]
    select = next(s for s in statements[before:] if "EXISTS" in s.upper())
    assert "LIMIT" in select.upper()
    for secret in ("deep", "^f", "2024", '"k"', "objs"):
        assert all(secret not in s for s in statements[before:]), secret
    for s in statements[before:]:
        assert not re.search(r"'|;|--|/\*|\\", s), s


def test_stored_forms_are_stable() -> None:
    text, kind, _ = encode_value({"b": [T0], "a": 1})
    assert (text, kind) == ('{"a":1,"b":[{"$date":"2024-04-01T09:00:00.000000"}]}', "json")
    assert decode_value(text, kind) == {"a": 1, "b": [T0]}
    assert encode_value([1.0, float("nan")])[1] == "jsonx"
