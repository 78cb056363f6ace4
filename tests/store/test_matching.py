"""keel.store.matching: the query language in Python means what the SQL store means.

The SQL store is the reference: the same random queries run through SQLite and through the
matcher over the same runs must pick the same runs, or be refused by both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from keel.entities import Run
from keel.errors import InvalidInput
from keel.store.matching import (
    DATASET,
    EXPERIMENT,
    MODEL,
    RUN,
    VERSION,
    Lazy,
    compile_query,
    conjuncts,
    page,
    sort_item,
    sort_records,
)
from keel.store.sql import SqlStore
from query_strategies import EXPERIMENT_TAGS, PARENTS, RUNS, queries

PROJECT = "p"


@pytest.fixture(scope="module")
def sql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, list[Run]]]:
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('matching') / 'keel.db'}")
    experiments = {
        name: store.create_experiment(PROJECT, name, tags).id
        for name, tags in EXPERIMENT_TAGS.items()
    }
    ids: dict[str, str] = {}
    for name, exp, kind, status, params, metrics, tags in RUNS:
        run = store.create_run(
            experiments[exp],
            name=name,
            kind=kind,
            status=status,
            tags=tags,
            author="ana",
            parent_id=ids.get(PARENTS.get(name, "")),
        )
        from keel.entities import Metric

        store.log_batch(
            run.id,
            params=params,
            metrics=[Metric(k, v, 1, 1000) for k, v in metrics.items()],
        )
        ids[name] = run.id
    runs = store.find_runs(PROJECT)
    yield store, runs


def _records(store: SqlStore, runs: list[Run]) -> list[dict[str, Any]]:
    exps = {e.id: e for e in store.find_experiments(PROJECT)}
    return [{**vars(r), "exp": Lazy(lambda r=r: vars(exps[r.experiment_id]))} for r in runs]


def _matcher_names(store: SqlStore, runs: list[Run], query: Any) -> set[str] | type:
    try:
        match = compile_query(query, RUN)
    except InvalidInput:
        return InvalidInput
    return {r["name"] for r in _records(store, runs) if match(r) is True}


def _sql_names(store: SqlStore, query: Any) -> set[str] | type:
    try:
        return {r.name for r in store.find_runs(PROJECT, query)}
    except InvalidInput:
        return InvalidInput


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries())
def test_matcher_agrees_with_sql(sql: tuple[SqlStore, list[Run]], query: dict[str, Any]) -> None:
    store, runs = sql
    assert _matcher_names(store, runs, query) == _sql_names(store, query)


CASES: list[dict[str, Any]] = [
    {"metrics.acc": {"$ne": 0.5}},  # NaN is NULL: neither = nor != matches it
    {"metrics.acc": {"$nin": [0.5]}},
    {"metrics.acc": {"$not": {"$eq": 0.5}}},
    {"metrics.acc": {"$gt": 1e308}},  # inf
    {"params.depth": 3},  # int 3 and float 3.0, not the string "3"
    {"params.depth": "3"},  # the text "3": the string, and the int too (same text)
    {"params.flag": True},
    {"params.flag": "true"},
    {"params.lr": None},
    {"params.lr": {"$exists": True}},
    {"params.layers": [1, 2]},
    {"params.opt": {"$gt": "ad"}},
    {"params.lr": {"$gt": "0"}},  # numbers never compare with strings
    {"tags.n": {"$in": [3]}},
    {"exp.tags.kind": {"$exists": False}},
    {"run.exp.name": "grid", "run.name": {"$regex": "^R", "$options": "i"}},
    {"$nor": [{"params.opt": {"$regex": "^ad"}}]},
    {"$not": {"params.lr": {"$lt": 0.5}}},
    {"parent_id": {"$exists": True}},
]


@pytest.mark.parametrize("query", CASES, ids=[str(q) for q in CASES])
def test_matcher_agrees_with_sql_on_edge_cases(
    sql: tuple[SqlStore, list[Run]], query: dict[str, Any]
) -> None:
    store, runs = sql
    assert _matcher_names(store, runs, query) == _sql_names(store, query)


SORTS = [
    [("metrics.acc", -1)],
    [("metrics.acc", 1)],
    [("params.lr", 1)],
    [("params.depth", -1), ("name", 1)],
    [("tags.team", 1)],
    [("name", -1)],
    ["-metrics.loss", "name"],
    [("exp.name", 1), ("metrics.loss", -1)],
    [("end_time", 1)],
]


@pytest.mark.parametrize("sort", SORTS, ids=[str(s) for s in SORTS])
def test_sort_agrees_with_sql(sql: tuple[SqlStore, list[Run]], sort: list[Any]) -> None:
    store, runs = sql
    expected = [r.name for r in store.find_runs(PROJECT, sort=sort)]
    got = [r["name"] for r in sort_records(_records(store, runs), sort, RUN)]
    assert got == expected


def test_refusals_match_the_sql_store_messages() -> None:
    bad = [
        ({"colour": "red"}, "unknown query field 'colour'"),
        ({"params.lr": {"$near": 1}}, "unknown operator '\\$near'"),
        ({"params.lr": {"$in": 1}}, "takes a list"),
        ({"params.opt": {"$regex": "("}}, "invalid \\$regex"),
        ({"params.opt": {"$regex": "a", "$options": "q"}}, "unknown \\$options"),
        ({"name": [1]}, "cannot compare a record attribute"),
        ({"metrics.acc": {"$gt": None}}, "takes a number or a string"),
        ({"$where": "1"}, "unknown query operator"),
        ({"$or": []}, "non-empty list"),
        ({"name": {"$options": "i"}}, "needs \\$regex"),
        ({"exp.params.x": 1}, "unknown query field 'exp.params.x'"),
    ]
    for query, message in bad:
        with pytest.raises(InvalidInput, match=message):
            compile_query(query, RUN)
    with pytest.raises(InvalidInput, match="sort item"):
        sort_item(("name", 2))
    with pytest.raises(InvalidInput, match="limit must be"):
        page([], -1, 0)


def test_schemas_match_the_sql_targets() -> None:
    """The matcher's fields are the SQL store's (keel.store.sql's query targets)."""
    from keel.store import schema as t
    from keel.store import sql

    targets = {
        "experiment": (sql._experiment_target(t.experiments), EXPERIMENT),
        "run": (sql._run_target(t.runs), RUN),
        "model": (sql._model_target(t.registered_models), MODEL),
        "version": (sql._version_target(t.model_versions), VERSION),
        "dataset": (sql._dataset_target(t.datasets), DATASET),
    }
    for name, (target, schema) in targets.items():
        assert set(target.attributes) == set(schema.attributes), name
        assert set(target.key_values) == set(schema.key_values), name
        assert (target.metrics_owner is not None) == schema.metrics, name
        assert set(target.relations) == set(schema.relations), name
        assert tuple(target.self_names) == schema.self_names, name


def test_conjuncts_flatten_and() -> None:
    query = {"a": 1, "$and": [{"b": 2, "$and": [{"c": 3}]}, {"d": 4}], "$or": [{"e": 5}]}
    assert conjuncts(query) == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}, {"$or": [{"e": 5}]}]
    assert conjuncts({"$and": "oops"}) == [{"$and": "oops"}]  # left for the compiler to refuse


def test_lazy_relations_are_fetched_only_when_asked() -> None:
    calls = []

    def exp() -> dict[str, Any]:
        calls.append(1)
        return {"name": "grid", "tags": {}}

    record = {"id": "x", "name": "r", "params": {}, "exp": Lazy(exp)}
    assert compile_query({"name": "r"}, RUN)(record) is True
    assert calls == []
    assert compile_query({"exp.name": "grid"}, RUN)(record) is True
    assert compile_query({"exp.name": {"$ne": "grid"}}, RUN)(record) is False
    assert calls == [1]


def test_nan_metric_is_sql_null() -> None:
    record = {"id": "x", "metrics": {"acc": math.nan}}
    assert compile_query({"metrics.acc": 1}, RUN)(record) is None
    assert compile_query({"metrics.acc": {"$ne": 1}}, RUN)(record) is None
    assert compile_query({"metrics.acc": {"$exists": True}}, RUN)(record) is True
    assert compile_query({"$or": [{"metrics.acc": 1}, {"name": None}]}, RUN)(record) is True
