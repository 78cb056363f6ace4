"""keel.store.mlflow.filters: which part of a run query MLflow answers, without a server.

The invariant: on any runs, what MLflow's filter keeps (evaluated here by MLflow's own
in-Python search, ``mlflow.utils.search_utils.SearchUtils``, on the runs as the MLflow
backend writes them) AND the remainder (keel's matcher) is exactly what the whole query
keeps. And what is claimed exact needs no remainder.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import pytest
from hypothesis import given, settings

from keel.entities import Experiment, Run
from keel.store.matching import EXPERIMENT, RUN, Lazy, compile_query
from keel.store.mlflow import codec
from keel.store.mlflow.filters import push_run_query, push_run_sort
from keel.store.values import encode_value
from query_strategies import EXPERIMENT_TAGS, PARENTS, RUNS, queries

mlflow_entities = pytest.importorskip("mlflow.entities")
from mlflow.utils.search_utils import SearchUtils  # noqa: E402

EXPERIMENTS = {
    name: Experiment(str(i + 1), "p", name, tags, 1000 + i, 1000 + i)
    for i, (name, tags) in enumerate(EXPERIMENT_TAGS.items())
}


def _keel_runs() -> list[Run]:
    runs: list[Run] = []
    ids = {}
    for i, (name, exp, kind, status, params, metrics, tags) in enumerate(RUNS):
        run_id = f"{i:032x}"
        ids[name] = run_id
        runs.append(
            Run(
                id=run_id,
                experiment_id=EXPERIMENTS[exp].id,
                name=name,
                kind=kind,
                status=status,
                start_time=5000 + i,
                end_time=9000 + i if status != "running" else None,
                parent_id=ids.get(PARENTS.get(name, "")),
                author="ana",
                params=params,
                metrics=metrics,
                tags=tags,
                created_at=5000 + i,
            )
        )
    return runs


KEEL_RUNS = _keel_runs()


def _as_mlflow(run: Run) -> Any:
    """The run as the MLflow backend stores it (see keel.store.mlflow.store.create_run)."""
    e = mlflow_entities
    tags = {k: encode_value(v)[0] for k, v in run.tags.items()}
    tags["mlflow.runName"] = run.name
    tags["mlflow.user"] = run.author
    if run.kind != "tracking" or run.id.endswith("2"):  # keel writes it; others may not
        tags["keel.kind"] = run.kind
    if run.parent_id:
        tags["mlflow.parentRunId"] = run.parent_id
    metrics = [
        e.Metric(k, math.copysign(sys.float_info.max, v) if math.isinf(v) else v, 0, 1)
        for k, v in run.metrics.items()
    ]
    info = e.RunInfo(
        run_id=run.id,
        experiment_id=run.experiment_id,
        user_id=run.author,
        status=codec.STATUS_TO_MLFLOW[run.status],
        start_time=run.created_at,
        end_time=run.end_time,
        lifecycle_stage="active",
        run_name=run.name,
    )
    data = e.RunData(
        metrics=metrics,
        params=[e.Param(k, encode_value(v)[0]) for k, v in run.params.items()],
        tags=[e.RunTag(k, v) for k, v in tags.items()],
    )
    return e.Run(info, data)


MLFLOW_RUNS = {r.id: _as_mlflow(r) for r in KEEL_RUNS}


def _record(run: Run) -> dict[str, Any]:
    exp = next(e for e in EXPERIMENTS.values() if e.id == run.experiment_id)
    return {**vars(run), "exp": Lazy(lambda: vars(exp))}


def _whole(query: Any) -> set[str]:
    match = compile_query(query, RUN)
    return {r.id for r in KEEL_RUNS if match(_record(r)) is True}


def _split(query: Any) -> set[str]:
    push = push_run_query(query, None)
    kept = list(MLFLOW_RUNS.values())
    if push.filter:
        kept = SearchUtils.filter(kept, push.filter)
    ids = {r.info.run_id for r in kept}
    if push.experiment_query is not None:
        on_exp = compile_query(push.experiment_query, EXPERIMENT)
        exps = {e.id for e in EXPERIMENTS.values() if on_exp(vars(e)) is True}
        ids = {i for i in ids if MLFLOW_RUNS[i].info.experiment_id in exps}
    if push.remainder is not None:
        rest = compile_query(push.remainder, RUN)
        ids = {r.id for r in KEEL_RUNS if r.id in ids and rest(_record(r)) is True}
    return ids


@settings(max_examples=400, deadline=None)
@given(query=queries())
def test_pushed_and_remainder_is_the_query(query: dict[str, Any]) -> None:
    assert _split(query) == _whole(query)


CASES: list[tuple[dict[str, Any], str, bool]] = [
    # query, MLflow filter, exact (nothing left for Python)
    # params and tags mean what MongoDB means (a list holding "adam" matches too): a plain
    # key's $exists is an MLflow filter; a string narrows by LIKE, and keel checks the rest
    ({"params.opt": "adam"}, "params.`opt` LIKE '%adam%'", False),
    ({"params.opt": "ad'am"}, 'params.`opt` LIKE "%ad\'am%"', False),
    ({"params.opt": 'ad"am'}, "", False),  # JSON escapes the quote inside a list
    ({"params.layers": [1, 2]}, "", False),
    ({"params.lr": None}, "", False),
    ({"params.lr": {"$exists": False}}, "params.`lr` IS NULL", True),
    ({"params.a.b": {"$exists": True}}, "", False),
    ({"params.lr": {"$exists": True}}, "params.`lr` IS NOT NULL", True),
    ({"params.flag": True}, "", False),
    ({"params.depth": 3}, "", False),
    ({"params.lr": {"$gt": 0.005}}, "", False),
    ({"params.opt": {"$ne": "adam"}}, "", False),
    ({"params.opt": {"$regex": "^ad"}}, "params.`opt` LIKE '%ad%'", False),
    ({"params.opt": {"$regex": "^ad", "$options": "i"}}, "params.`opt` ILIKE '%ad%'", False),
    ({"params.opt": re.compile("dam", re.I)}, "params.`opt` ILIKE '%dam%'", False),
    ({"params.opt": {"$regex": "a?dam"}}, "", False),  # only a required prefix is used
    ({"params.opt": {"$regex": "x|adam"}}, "", False),
    ({"metrics.acc": {"$gte": 0.9, "$lt": 1}}, "metrics.`acc` >= 0.9 AND metrics.`acc` < 1", True),
    ({"metrics.acc": 1e-05}, "metrics.`acc` = 1E-05", True),
    ({"metrics.acc": {"$gt": math.inf}}, "", False),
    ({"metrics.acc": {"$exists": True}}, "", False),
    ({"metrics.acc": {"$ne": 0.5}}, "", False),
    ({"tags.team": "a", "tags.keel.kind": "x"}, "tags.`team` LIKE '%a%'", False),
    ({"name": "r1", "status": "finished"}, "attributes.run_name = 'r1' AND attributes.status = 'FINISHED'", True),
    ({"run.status": {"$ne": "running"}}, "attributes.status != 'RUNNING'", True),
    ({"status": "paused"}, "", False),
    ({"created_at": {"$gte": 5003}}, "attributes.start_time >= 5003", True),
    ({"start_time": {"$gte": 5003}}, "", False),
    ({"id": {"$in": ["b", "a"]}}, "attributes.run_id IN ('a', 'b')", True),
    ({"kind": "train"}, "tags.`keel.kind` = 'train'", True),
    ({"kind": "tracking"}, "", False),
    ({"parent_id": None}, "tags.`mlflow.parentRunId` IS NULL", True),
    ({"exp.name": "grid", "params.opt": "sgd"}, "params.`opt` LIKE '%sgd%'", False),
    ({"$and": [{"params.opt": "adam"}, {"$or": [{"name": "r0"}, {"name": "r2"}]}]}, "params.`opt` LIKE '%adam%'", False),
    ({"$not": {"params.opt": "adam"}}, "", False),
    ({"params.bad key!": 1}, "", False),
]  # fmt: skip


@pytest.mark.parametrize(("query", "pushed", "exact"), CASES, ids=[str(c[0]) for c in CASES])
def test_what_is_pushed(query: dict[str, Any], pushed: str, exact: bool) -> None:
    push = push_run_query(query, None)
    assert push.filter == pushed
    assert push.exact is exact
    if push.filter:
        SearchUtils.filter(list(MLFLOW_RUNS.values()), push.filter)  # MLflow's parser takes it


def test_experiment_conditions_pick_experiments() -> None:
    push = push_run_query({"exp.tags.kind": "search", "experiment_id": "1", "name": "r0"}, None)
    assert push.experiment_query == {"$and": [{"tags.kind": "search"}, {"id": "1"}]}
    assert push.filter == "attributes.run_name = 'r0'" and push.exact


def test_sort_is_pushed_only_when_nothing_remains() -> None:
    push = push_run_query({"params.opt": {"$exists": True}}, [("metrics.acc", -1)])
    assert push.order_by == ["metrics.`acc` DESC", "attributes.run_id ASC"]
    assert push.sort_metrics == ("acc",)
    assert push_run_query({"params.lr": {"$gt": 0}}, [("name", 1)]).order_by is None
    assert push_run_query(None, None).order_by == [
        "attributes.start_time DESC",
        "attributes.run_id ASC",
    ]
    assert push_run_sort([("params.lr", 1)]) is None  # MLflow sorts params as text
    assert push_run_sort([("name", 1), ("name", -1)]) is None
    assert push_run_sort(["-end_time", ("id", 1)]) == (
        ["attributes.end_time DESC", "attributes.run_id ASC"],
        (),
    )
