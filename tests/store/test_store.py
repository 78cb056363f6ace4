"""The SQL store: schema creation and migrations, URLs, race-free version numbers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from keel.errors import ConfigError, StoreUnavailable
from keel.store.engine import (
    _create_engine,
    dispose_engines,
    head_revision,
    mask_url,
    normalize_url,
    upgrade,
)
from keel.store.sql import SqlStore


def test_urls_are_normalised_and_masked(tmp_path: Path) -> None:
    assert normalize_url(str(tmp_path)) == f"sqlite:///{tmp_path / 'keel.db'}"
    assert normalize_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert mask_url("postgresql://keel:s3cret@db:5432/x") == "postgresql://keel:***@db:5432/x"
    with pytest.raises(ConfigError, match="unsupported store URL scheme 'mysql'"):
        normalize_url("mysql://root:pw@h/db")


def test_new_embedded_store_is_created_in_wal_mode(tmp_path: Path) -> None:
    store = SqlStore(str(tmp_path / "store"))
    store.get_or_create_project("p")
    assert (tmp_path / "store" / "keel.db").is_file()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    assert store.schema_revision() == head_revision()


def test_an_older_schema_is_refused_with_the_fix(store_url: str) -> None:
    store = SqlStore(store_url)
    store.get_or_create_project("p")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    dispose_engines()
    with pytest.raises(ConfigError, match="keel db upgrade"):
        SqlStore(store_url).get_or_create_project("p")
    with _create_engine(normalize_url(store_url)).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
    dispose_engines()


def test_a_schema_from_a_newer_keel_is_refused_with_the_fix(store_url: str) -> None:
    """Not `keel db upgrade` (which cannot help): this keel is the one that is too old."""
    SqlStore(store_url).get_or_create_project("p")
    engine = _create_engine(normalize_url(store_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    dispose_engines()
    with pytest.raises(ConfigError, match=r"0099, which this keel does not know.*upgrade keel"):
        SqlStore(store_url).get_or_create_project("p")
    with pytest.raises(ConfigError, match="a newer keel migrated it; upgrade keel here"):
        upgrade(engine)  # `keel db upgrade` says the same, not an alembic traceback
    engine.dispose()
    dispose_engines()


def test_unreachable_postgres_is_store_unavailable() -> None:
    store = SqlStore("postgresql://keel:pw@127.0.0.1:1/keel")
    with pytest.raises(
        StoreUnavailable, match=r"cannot use the metadata store at .*127\.0\.0\.1:1"
    ):
        store.get_or_create_project("p")


def test_concurrent_version_registration_is_unique_and_gapless(store_url: str) -> None:
    store = SqlStore(store_url)
    exp = store.create_experiment("p", "e")
    run = store.create_run(exp.id)
    errors: list[BaseException] = []

    def register(worker: int) -> None:
        try:
            for i in range(10):
                store.create_model_version(
                    "p", "m", run_id=run.id, path_in_run="m", content_hash=f"{worker:032x}{i:032x}"
                )
                store.create_dataset("p", "d", content_hash=f"{worker:032x}{i:032x}", files=[])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = sorted(v.version for v in store.find_model_versions("p", {"model.name": "m"}))
    assert versions == list(range(1, 81))
    datasets = sorted(d.version for d in store.find_datasets("p", {"name": "d"}))
    assert datasets == list(range(1, 81))


def test_project_scoping(store_url: str) -> None:
    store = SqlStore(store_url)
    a = store.create_experiment("a", "same-name")
    b = store.create_experiment("b", "same-name")
    assert a.id != b.id
    assert [e.id for e in store.find_experiments("a")] == [a.id]
    ra = store.create_run(a.id)
    store.create_run(b.id)
    assert [r.id for r in store.find_runs("a")] == [ra.id]
    assert len(store.find_runs(None)) == 2


def test_processes_creating_the_same_experiment_at_once_all_get_it(store_url: str) -> None:
    """A pipeline job and the server (or replicas) may create an experiment at the same
    moment; on PostgreSQL both saw none and the second insert broke the unique name (a
    `pg+s3` pipeline test failed so in a full run). Every caller gets the one experiment."""
    SqlStore(store_url).get_or_create_project("p")
    callers = 8
    barrier = threading.Barrier(callers)
    found: list[str] = []
    errors: list[BaseException] = []

    def create(attempt: int) -> None:
        store = SqlStore(store_url)
        barrier.wait()
        try:
            found.append(store.get_or_create_experiment("p", f"same-{attempt}").id)
        except BaseException as exc:  # the test reports it below
            errors.append(exc)

    for attempt in range(5):
        barrier.reset()
        found.clear()
        threads = [threading.Thread(target=create, args=(attempt,)) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(found) == callers and len(set(found)) == 1


def test_a_batch_of_points_keeps_its_order_values_and_newest_point(store_url: str) -> None:
    """On PostgreSQL a batch is written as one statement over arrays (not one INSERT per
    point): integers, NaN and infinities keep their values, points of equal step and time
    keep the batch's order, and the latest value is the newest point (a later batch of an
    older step does not replace it)."""
    import math

    from keel.entities import Metric

    store = SqlStore(store_url)
    exp = store.create_experiment("p", "batch")
    run = store.create_run(exp.id)
    store.log_batch(
        run.id,
        metrics=[
            Metric("a", 1, 0, 10),  # an int value
            Metric("a", 0.5, 0, 10),  # same step and time: after the one above
            Metric("a", math.inf, 2, 5),
            Metric("b", math.nan, 1, 1),
            Metric("b", -math.inf, 0, 99),
        ],
    )
    store.log_batch(run.id, metrics=[Metric("a", 7.0, 1, 50)])  # older step: not the latest
    history = [(m.value, m.step, m.timestamp) for m in store.get_metric_history(run.id, "a")]
    assert history == [(1.0, 0, 10), (0.5, 0, 10), (7.0, 1, 50), (math.inf, 2, 5)]
    b = [m.value for m in store.get_metric_history(run.id, "b")]
    assert b[0] == -math.inf and math.isnan(b[1]) and len(b) == 2
    found = store.get_run(run.id)
    assert found.metrics["a"] == math.inf and math.isnan(found.metrics["b"])


def test_a_page_of_many_runs_reads_every_param_tag_and_metric(store_url: str) -> None:
    """Reading a page of runs asks for their params, tags and metrics with every id in one
    parameter on PostgreSQL (in chunks of 500 on SQLite): 1,200 runs come back whole."""
    from keel.entities import Metric

    store = SqlStore(store_url)
    exp = store.create_experiment("p", "page")
    ids = []
    for i in range(1200):
        run = store.create_run(exp.id, tags={"i": i})
        store.log_batch(run.id, params={"p": f"v{i}"}, metrics=[])
        ids.append(run.id)
    store.log_batch(ids[-1], metrics=[Metric("m", 1.5, 0, 0)])
    found = store.find_runs("p", {"experiment_id": exp.id}, [("created_at", 1)], 2000)
    assert len(found) == 1200
    by_id = {r.id: r for r in found}
    assert all(by_id[rid].params == {"p": f"v{i}"} for i, rid in enumerate(ids))
    assert all(by_id[rid].tags["i"] == i for i, rid in enumerate(ids))
    assert by_id[ids[-1]].metrics == {"m": 1.5} and by_id[ids[0]].metrics == {}


def test_invocation_index_rows_round_trip_and_a_retried_batch_is_indexed_once(
    store_url: str,
) -> None:
    from keel.entities import ArtifactFile, InvocationIndex

    store = SqlStore(store_url)
    run = store.create_run(store.create_experiment("p", "e").id)
    mv, _ = store.create_model_version(
        "p", "m", run_id=run.id, path_in_run="m", content_hash="a" * 64
    )
    batch = ArtifactFile("predictions/m/1/r0.jsonl", "b" * 64, 10)
    rows = [
        InvocationIndex(f"r{i}", 1_700_000_000_000 + i, 1.5 + i, "ok" if i % 2 else "error", "", i)
        for i in range(5)
    ]
    store.record_invocations(mv.id, batch, rows)
    store.record_invocations(mv.id, batch, rows)  # the commit's answer was lost: sent again
    found = store.find_invocations(mv.id)
    assert sorted(r.request_id for r in found) == [f"r{i}" for i in range(5)]
    by_id = {r.request_id: r for r in found}
    assert by_id["r3"] == InvocationIndex("r3", 1_700_000_000_003, 4.5, "ok", "b" * 64, 3)
    assert by_id["r0"].status == "error"
    with pytest.raises(Exception, match="not found"):
        store.record_invocations("f" * 32, batch, rows)
