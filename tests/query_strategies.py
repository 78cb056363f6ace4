"""Runs with awkward values, and hypothesis strategies of queries over them.

Shared by the tests of keel's query semantics: the in-Python matcher against the SQL store
(tests/store/test_matching.py) and the MLflow pushdown against the matcher
(tests/store/test_mlflow_filters.py). The runs mix value types on purpose: a param that is
an int in one run, a float or a string in another, a bool, a list, NaN and ±inf metrics,
missing keys, names sharing prefixes, upper and lower case.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

# name, experiment, kind, status, params, metrics, tags
RUNS: list[tuple[str, str, str, str, dict[str, Any], dict[str, float], dict[str, Any]]] = [
    ("r0", "grid", "train", "finished", {"lr": 0.1, "opt": "adam", "depth": 3}, {"acc": 0.91, "loss": 0.3}, {"team": "a"}),
    ("r1", "grid", "tracking", "finished", {"lr": 0.01, "opt": "sgd", "depth": 5.0}, {"acc": 0.85}, {"team": "b", "n": 3}),
    ("r2", "grid", "train", "failed", {"lr": 0.001, "opt": "adam", "flag": True}, {"acc": 0.97, "loss": 0.1}, {"team": "a", "x": "1"}),
    ("r3", "grid", "tracking", "running", {"lr": 1, "opt": "Adam", "depth": "3"}, {"acc": math.nan}, {}),
    ("r4", "other", "dataset", "finished", {"opt": "rmsprop", "depth": 10, "layers": [1, 2]}, {"loss": 2.0, "acc": math.inf}, {"team": "c"}),
    ("r5", "other", "tracking", "killed", {"opt": "ad'am", "flag": False, "lr": None}, {"loss": -math.inf}, {"team": "A", "n": "3"}),
    ("ad", "grid", "retest", "finished", {"opt": "adamw", "lr": 0.5}, {"acc": 0.5, "loss": 0.5}, {"x": 1}),
]  # fmt: skip
EXPERIMENT_TAGS = {"grid": {"kind": "search"}, "other": {}}
PARENTS = {"r5": "r4"}  # child → parent (same experiment)

PARAM_KEYS = ["lr", "opt", "depth", "flag", "layers", "missing"]
METRIC_KEYS = ["acc", "loss", "missing"]
TAG_KEYS = ["team", "x", "n", "missing"]

NUMBERS = [0, 1, 3, 5, 10, 0.1, 0.5, 0.9, 0.01, -1, 2.0, 3.0]
STRINGS = ["adam", "Adam", "sgd", "a", "A", "b", "3", "1", "true", "r1", "ad", "ad'am", "grid"]
PATTERNS = ["^ad", "ad", "^a", "m$", "^r[0-3]", "^A", "d.m", "^ad'", "a?d", "x|adam", "^3"]

numbers = st.sampled_from(NUMBERS)
strings = st.sampled_from(STRINGS)
kv_values = st.one_of(
    numbers, strings, st.booleans(), st.none(), st.just([1, 2]), st.just({"a": 1})
)


def _ops(values: st.SearchStrategy[Any], ordered: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A condition: a plain value or an operator dict (``ordered`` for $gt…)."""
    single = st.one_of(
        values.map(lambda v: {"$eq": v}),
        values.map(lambda v: {"$ne": v}),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered).map(
            lambda p: {p[0]: p[1]}
        ),
        st.lists(values, max_size=3).map(lambda v: {"$in": v}),
        st.lists(values, max_size=3).map(lambda v: {"$nin": v}),
        st.booleans().map(lambda b: {"$exists": b}),
    )
    return st.one_of(
        values,
        single,
        single.map(lambda s: {"$not": s}),
        st.tuples(single, single).map(lambda p: {**p[0], **p[1]}),
    )


def _regex() -> st.SearchStrategy[Any]:
    plain = st.sampled_from(PATTERNS).map(lambda p: {"$regex": p})
    folded = st.sampled_from(PATTERNS).map(lambda p: {"$regex": p, "$options": "i"})
    return st.one_of(plain, folded, plain.map(lambda r: {"$not": r}))


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    """One field with a condition that means the same on every backend (no comparison of
    an attribute or a metric with a value of another type, which SQL engines coerce)."""
    kv = st.one_of(
        st.tuples(
            st.sampled_from([f"params.{k}" for k in PARAM_KEYS]),
            _ops(kv_values, st.one_of(numbers, strings)),
        ),
        st.tuples(
            st.sampled_from([f"tags.{k}" for k in TAG_KEYS]),
            _ops(kv_values, st.one_of(numbers, strings)),
        ),
        st.tuples(
            st.sampled_from([f"params.{k}" for k in PARAM_KEYS] + [f"tags.{k}" for k in TAG_KEYS]),
            _regex(),
        ),
    )
    metric = st.tuples(
        st.sampled_from([f"metrics.{k}" for k in METRIC_KEYS]), _ops(numbers, numbers)
    )
    text_attrs = st.sampled_from(
        ["name", "run.name", "status", "kind", "exp.name", "exp.tags.kind"]
    )
    text = st.one_of(
        st.tuples(
            text_attrs,
            _ops(
                st.one_of(
                    strings, st.sampled_from(["finished", "failed", "train", "tracking", "other"])
                ),
                strings,
            ),
        ),
        st.tuples(text_attrs, _regex()),
    )
    parent = st.tuples(
        st.just("parent_id"), st.sampled_from([None, {"$exists": True}, {"$exists": False}])
    )
    return st.one_of(kv, metric, text, parent).map(lambda p: {p[0]: p[1]})  # fmt: skip


def queries() -> st.SearchStrategy[dict[str, Any]]:
    """Whole queries: conditions, implicit and explicit $and, $or, $nor, top-level $not."""
    leaf = st.lists(conditions(), min_size=1, max_size=3).map(
        lambda items: {k: v for item in items for k, v in item.items()}
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["$and", "$or", "$nor"]), st.lists(inner, min_size=1, max_size=3)).map(
                lambda p: {p[0]: p[1]}
            ),
            inner.map(lambda q: {"$not": q}),
            st.tuples(inner, conditions()).map(lambda p: {**p[1], "$and": [p[0]]}),
        ),
        max_leaves=4,
    )  # fmt: skip
