"""Per-bucket summaries of long metric histories (keel.store.buckets), on SQLite and
PostgreSQL: kept equal to the points logged, rebuilt by the migration, purged with their run,
and read back as the chart's overview."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from sqlalchemy import text

from keel.entities import Metric
from keel.store import schema as t
from keel.store.buckets import BUCKET_STEPS, COLUMNS
from keel.store.engine import dispose_engines, upgrade
from keel.store.sql import SqlStore


def _points(store: SqlStore) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    'SELECT id, run_id, "key", "value", is_nan, step, "timestamp" FROM metrics '
                    "ORDER BY id"
                )
            )
        )


def _stored(store: SqlStore) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(t.metric_buckets.select()).all()
    return {(r.run_id, r.key, r.bucket): tuple(r)[3:] for r in rows}


def _expected(points: list[tuple[Any, ...]]) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    """Brute force from the points in logging (id) order: the first point is the lowest
    step (first logged among equals), the lowest value wins, an equal one at a lower step,
    then the first logged; NaNs count but never win."""
    groups: dict[tuple[str, str, int], list[tuple[Any, ...]]] = {}
    for pid, run_id, key, value, is_nan, step, stamp in points:
        if step >= BUCKET_STEPS:
            groups.setdefault((run_id, key, step // BUCKET_STEPS), []).append(
                (pid, None if is_nan else value, step, stamp)
            )
    found = {}
    for name, group in groups.items():
        first = min(group, key=lambda p: (p[2], p[0]))
        valued = [p for p in group if p[1] is not None]
        low = min(valued, key=lambda p: (p[1], p[2], p[0]), default=None)
        high = min(valued, key=lambda p: (-p[1], p[2], p[0]), default=None)
        found[name] = (
            len(group),
            first[2],
            first[3],
            *((low[1], low[2], low[3]) if low else (None, None, None)),
            *((high[1], high[2], high[3]) if high else (None, None, None)),
        )
    return found


def test_buckets_stay_equal_to_the_points_logged(store_url: str) -> None:
    """Random batches: several keys, steps from 0 to 5,000 in any order, repeated steps,
    NaN, ±inf and ties of value; after every batch the buckets equal a brute-force summary."""
    store = SqlStore(store_url)
    exp = store.create_experiment("p", "buckets")
    runs = [store.create_run(exp.id).id for _ in range(2)]
    rng = random.Random(7)
    for batch in range(12):
        metrics = []
        for _ in range(rng.randint(1, 400)):
            step = rng.choice([rng.randint(0, 5000), rng.randint(60, 70), 64 * rng.randint(1, 9)])
            value = rng.choice(
                [round(rng.uniform(-1, 1), 1), math.nan, math.inf, -math.inf, 0.5, 0.5]
            )
            metrics.append(Metric(rng.choice("abc"), value, step, rng.randint(0, 10**6)))
        store.log_batch(runs[batch % 2], metrics=metrics)
        assert _stored(store) == _expected(_points(store)), f"after batch {batch}"
    assert len(_stored(store)) > 100


def test_points_below_the_first_bucket_cost_no_bucket(store_url: str) -> None:
    store = SqlStore(store_url)
    run = store.create_run(store.create_experiment("p", "short").id).id
    store.log_batch(run, metrics=[Metric(f"m{i}", 0.1, i, 0) for i in range(BUCKET_STEPS)])
    assert _stored(store) == {}
    store.log_batch(run, metrics=[Metric("m0", 0.2, BUCKET_STEPS, 0)])
    assert list(_stored(store)) == [(run, "m0", 1)]


def test_the_migration_summarises_the_points_already_logged(store_url: str) -> None:
    store = SqlStore(store_url)
    exp = store.create_experiment("p", "old")
    rng = random.Random(3)
    for _ in range(3):
        run = store.create_run(exp.id).id
        store.log_batch(
            run,
            metrics=[
                Metric("loss", rng.choice([rng.random(), math.nan]), rng.randint(0, 3000), i)
                for i in range(2000)
            ],
        )
    before = _stored(store)
    assert before == _expected(_points(store)) and len(before) > 50
    with store.engine.begin() as conn:  # the store as keel 0003 left it
        conn.execute(text("DROP TABLE metric_buckets"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    engine = store.engine
    assert upgrade(engine) == ("0003", "0004")
    dispose_engines()
    assert _stored(SqlStore(store_url)) == before


def test_buckets_go_with_their_purged_run(store_url: str) -> None:
    store = SqlStore(store_url)
    exp = store.create_experiment("p", "gone")
    kept, gone = store.create_run(exp.id).id, store.create_run(exp.id).id
    for run in (kept, gone):
        store.log_batch(run, metrics=[Metric("m", 1.0, s, 0) for s in range(0, 1000, 10)])
    store.update_run(gone, lifecycle="deleted")
    assert store.purge_deleted_runs() == ([gone], [])
    assert {name[0] for name in _stored(store)} == {kept}


def test_the_overview_of_a_long_history_keeps_its_ends_and_extremes(store_url: str) -> None:
    store = SqlStore(store_url)
    run = store.create_run(store.create_experiment("p", "long").id).id
    n = 40_000
    values = [math.sin(i / 900) for i in range(n)]
    values[12_345] = 50.0
    values[23_456] = -50.0
    values[30_000] = math.nan
    store.log_batch(run, metrics=[Metric("wave", v, i, 1_000 + i) for i, v in enumerate(values)])
    overview = store.metric_overview(run, "wave", 500)
    assert overview is not None and overview.points == n
    assert store.metric_signature(run, "wave")[0] == n
    a = overview.arrays
    assert list(a.steps) == sorted(a.steps) and len(a) < n // 20
    assert a.steps[0] == 0 and a.steps[-1] == n - 1 and a.values[-1] == values[-1]
    assert list(a.steps[:BUCKET_STEPS]) == list(range(BUCKET_STEPS))  # the head, whole
    assert a.values.max() == 50.0 and a.steps[a.values.argmax()] == 12_345
    assert a.values.min() == -50.0 and a.timestamps[a.values.argmin()] == 1_000 + 23_456
    assert store.metric_overview(run, "wave", n) is None  # too few buckets for that chart
    assert store.metric_overview(run, "other", 1) is None


@pytest.mark.parametrize("columns", [COLUMNS])
def test_the_table_has_the_columns_the_summary_fills(columns: tuple[str, ...]) -> None:
    assert tuple(c.name for c in t.metric_buckets.c) == columns
