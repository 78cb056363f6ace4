"""find_* with MongoDB-style queries: each operator checked against plain Python."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from keel import Client
from keel.errors import InvalidInput

ROWS = [
    # name, params, metrics, tags
    ("r0", {"lr": 0.1, "opt": "adam", "depth": 3}, {"acc": 0.91, "loss": 0.3}, {"team": "a"}),
    ("r1", {"lr": 0.01, "opt": "sgd", "depth": 5}, {"acc": 0.85}, {"team": "b"}),
    ("r2", {"lr": 0.001, "opt": "adam"}, {"acc": 0.97, "loss": 0.1}, {"team": "a", "x": "1"}),
    ("r3", {"lr": 1, "opt": "Adam"}, {"acc": math.nan}, {}),
    ("r4", {"opt": "rmsprop", "depth": 10}, {"loss": 2.0}, {"team": "c"}),
]


@pytest.fixture
def runs(client: Client) -> dict[str, str]:
    ids = {}
    exp = client.create_exp("grid", tags={"kind": "search"})
    client.create_exp("other")
    for name, params, metrics, tags in ROWS:
        with client.start_run(exp if name != "r4" else "other", name=name, tags=tags) as run:
            run.log_params(params)
            run.log_metrics(metrics)
        ids[name] = run.id
    return ids


def names(found: list[Any]) -> set[str]:
    return {r.name for r in found}


def where(predicate: Any) -> set[str]:
    return {name for name, params, metrics, tags in ROWS if predicate(params, metrics, tags)}


CASES = [
    ({"params.opt": "adam"}, lambda p, m, t: p.get("opt") == "adam"),
    ({"params.opt": {"$ne": "adam"}}, lambda p, m, t: p.get("opt") != "adam"),
    ({"params.lr": {"$gt": 0.005}}, lambda p, m, t: "lr" in p and p["lr"] > 0.005),
    ({"params.lr": {"$lte": 0.01}}, lambda p, m, t: "lr" in p and p["lr"] <= 0.01),
    ({"params.depth": {"$in": [3, 10]}}, lambda p, m, t: p.get("depth") in (3, 10)),
    ({"params.depth": {"$nin": [3, 10]}}, lambda p, m, t: p.get("depth") not in (3, 10)),
    ({"params.depth": {"$exists": False}}, lambda p, m, t: "depth" not in p),
    ({"metrics.acc": {"$gte": 0.9}}, lambda p, m, t: m.get("acc", math.nan) >= 0.9),
    ({"metrics.acc": {"$lt": 0.9}}, lambda p, m, t: m.get("acc", math.nan) < 0.9),
    ({"metrics.loss": {"$exists": True}}, lambda p, m, t: "loss" in m),
    ({"tags.team": "a"}, lambda p, m, t: t.get("team") == "a"),
    ({"params.opt": {"$regex": "^ad"}}, lambda p, m, t: re.match("^ad", p.get("opt", "")) is not None),
    ({"params.opt": {"$regex": "^ad", "$options": "i"}}, lambda p, m, t: p.get("opt", "").lower().startswith("ad")),
    ({"params.opt": {"$not": {"$regex": "^ad"}}}, lambda p, m, t: not p.get("opt", "").startswith("ad")),
    ({"$or": [{"tags.team": "b"}, {"metrics.loss": {"$gt": 1}}]}, lambda p, m, t: t.get("team") == "b" or m.get("loss", 0) > 1),
    ({"$and": [{"params.opt": "adam"}, {"metrics.acc": {"$gt": 0.95}}]}, lambda p, m, t: p.get("opt") == "adam" and m.get("acc", 0) > 0.95),
    ({"$nor": [{"params.opt": "adam"}, {"tags.team": "c"}]}, lambda p, m, t: p.get("opt") != "adam" and t.get("team") != "c"),
    ({"exp.name": "grid"}, lambda p, m, t: p.get("opt") != "rmsprop"),
    ({"exp.tags.kind": "search", "params.opt": "sgd"}, lambda p, m, t: p.get("opt") == "sgd"),
    ({"name": {"$in": ["r1", "r2"]}}, lambda p, m, t: p.get("lr") in (0.01, 0.001)),
    ({"run.status": "finished"}, lambda p, m, t: True),
]  # fmt: skip


@pytest.mark.parametrize(("query", "predicate"), CASES, ids=[str(q) for q, _ in CASES])
def test_query_matches_python(
    client: Client, runs: dict[str, str], query: Any, predicate: Any
) -> None:
    assert names(client.find_runs(query)) == where(predicate)


def test_sort_limit_and_paging(client: Client, runs: dict[str, str]) -> None:
    by_acc = client.find_runs({"metrics.acc": {"$exists": True}}, sort=[("metrics.acc", -1)])
    # NaN is kept as "no number" and sorts last
    assert [r.name for r in by_acc] == ["r2", "r0", "r1", "r3"]
    top = client.find_runs(sort=[("metrics.acc", -1)], limit=2)
    assert [r.name for r in top] == ["r2", "r0"]
    page2 = client.find_runs(sort=[("name", 1)], limit=2, offset=2)
    assert [r.name for r in page2] == ["r2", "r3"]
    by_param = client.find_runs({"params.lr": {"$exists": True}}, sort=[("params.lr", 1)])
    assert [r.name for r in by_param] == ["r2", "r1", "r0", "r3"]


def test_bad_queries_are_invalid_input(client: Client, runs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="unknown query field 'colour'"):
        client.find_runs({"colour": "red"})
    with pytest.raises(InvalidInput, match="unknown operator"):
        client.find_runs({"params.lr": {"$near": 1}})
    with pytest.raises(InvalidInput, match="takes a list"):
        client.find_runs({"params.lr": {"$in": 1}})
    with pytest.raises(InvalidInput, match="invalid \\$regex"):
        client.find_runs({"params.opt": {"$regex": "("}})
    with pytest.raises(InvalidInput, match="sort item"):
        client.find_runs(sort=[("name", 2)])


def test_hostile_strings_are_bound_not_formatted(client: Client, runs: dict[str, str]) -> None:
    hostile = "x' OR '1'='1"
    assert client.find_runs({"params.opt": hostile}) == []
    assert client.find_runs({f"params.{hostile}": {"$exists": True}}) == []
    assert len(client.find_runs({"params.opt": {"$ne": hostile}})) == len(ROWS)


def test_find_model_versions_by_run_and_model_fields(
    client: Client, runs: dict[str, str], tmp_path: Any
) -> None:
    for i, name in enumerate(["r0", "r2"]):
        f = tmp_path / f"m{i}.bin"
        f.write_bytes(bytes([i]) * 10)
        client.log_model_version("clf", runs[name], f)
    found = client.find_model_versions(
        {"model.name": "clf", "run.params.opt": "adam", "metrics.acc": {"$gt": 0.95}}
    )
    assert [(v.model, v.version) for v in found] == [("clf", 2)]
    assert [m.name for m in client.find_models({"name": {"$regex": "^cl"}})] == ["clf"]
