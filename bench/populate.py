"""Bulk-load the synthetic runs into keel's and MLflow's own SQLite schemas.

Going through either client would take hours for 100,000 runs, so each store is filled by
``executemany`` inserts (about 10,000 rows per call) straight into its tables, after the
client has created the schema and the experiment. The rows are what each system writes for a
finished run with 20 string params and 10 metrics logged once: keel's ``runs``,
``run_params``, ``metrics`` and ``latest_metrics``; MLflow's ``runs``, ``params``,
``metrics``, ``latest_metrics`` and the ``mlflow.runName`` / ``mlflow.user`` tags.
``PRAGMA synchronous=OFF`` and a 256 MB page cache are set on the loading connection only
(keel's connection gets its settings back afterwards; MLflow's is a separate, disposed
engine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, insert

from bench.data import (
    METRIC_KEYS,
    PARAM_KEYS,
    PARAM_VALUES,
    RunChunk,
    SyntheticRuns,
    run_id,
    run_name,
)

Advance = Callable[[int], None]
BENCH_USER = "bench"
BULK_CACHE_KIB = -256 * 1024  # negative: KiB, as SQLite's cache_size pragma counts them


@dataclass(frozen=True)
class Loaded:
    """What one populate step wrote and how long it took."""

    runs: int
    rows: int
    seconds: float
    db_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "rows": self.rows,
            "seconds": self.seconds,
            "db_bytes": self.db_bytes,
        }


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _insert_all(conn: Connection, batches: list[tuple[Table, list[dict[str, Any]]]]) -> int:
    rows = 0
    for table, table_rows in batches:
        if table_rows:
            conn.execute(insert(table), table_rows)
            rows += len(table_rows)
    return rows


# --- keel -----------------------------------------------------------------------------------


def populate_keel(client: Any, experiment_id: str, data: SyntheticRuns, advance: Advance) -> Loaded:
    """Insert ``data`` as finished runs of ``experiment_id`` into keel's tables."""
    from keel.store import schema as t

    engine = client.store.engine
    base = int(time.time() * 1000) - data.n_runs * 1000
    rows = 0
    start = time.perf_counter()
    with engine.connect().execution_options(keel_write=True) as conn:
        raw = conn.connection.driver_connection
        cache_size = raw.execute("PRAGMA cache_size").fetchone()[0]
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")
        try:
            for chunk in data.chunks():
                with conn.begin():
                    rows += _insert_all(conn, _keel_rows(t, chunk, experiment_id, data.seed, base))
                advance(len(chunk))
        finally:
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute(f"PRAGMA cache_size={cache_size}")
    seconds = time.perf_counter() - start
    db = Path(engine.url.database)
    return Loaded(data.n_runs, rows, seconds, _db_bytes(db))


def _keel_rows(
    t: Any, chunk: RunChunk, experiment_id: str, seed: int, base: int
) -> list[tuple[Table, list[dict[str, Any]]]]:
    runs, params, metrics, latest = [], [], [], []
    codes = chunk.params.tolist()
    values = chunk.metrics.tolist()
    for offset in range(len(chunk)):
        index = chunk.start + offset
        rid = run_id("keel", seed, index)
        started = base + index * 1000
        ended = started + 500
        runs.append(
            {
                "id": rid,
                "experiment_id": experiment_id,
                "name": run_name(index),
                "kind": "tracking",
                "status": "finished",
                "start_time": started,
                "end_time": ended,
                "parent_id": None,
                "author": BENCH_USER,
                "environment": {},
                "failure": None,
                "lifecycle": "active",
                "created_at": started,
            }
        )
        for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
            params.append(
                {
                    "run_id": rid,
                    "key": key,
                    "value": PARAM_VALUES[code],
                    "value_type": "str",
                    "value_num": None,
                }
            )
        for key, value in zip(METRIC_KEYS, values[offset], strict=True):
            point = {
                "run_id": rid,
                "key": key,
                "value": value,
                "is_nan": False,
                "step": 0,
                "timestamp": ended,
            }
            metrics.append(point)
            latest.append(point)
    return [
        (t.runs, runs),
        (t.run_params, params),
        (t.metrics, metrics),
        (t.latest_metrics, latest),
    ]


# --- MLflow ---------------------------------------------------------------------------------


def populate_mlflow(
    db: Path, experiment_id: str, artifact_root: str, data: SyntheticRuns, advance: Advance
) -> Loaded:
    """Insert ``data`` as finished runs of ``experiment_id`` into MLflow's tables in ``db``.

    The tables are MLflow's own SQLAlchemy models, so column names and types are its own.
    """
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from sqlalchemy import create_engine

    tables = {
        "runs": SqlRun.__table__,
        "params": SqlParam.__table__,
        "metrics": SqlMetric.__table__,
        "latest_metrics": SqlLatestMetric.__table__,
        "tags": SqlTag.__table__,
    }
    engine = create_engine(f"sqlite:///{db}")
    base = int(time.time() * 1000) - data.n_runs * 1000
    exp = int(experiment_id)
    rows = 0
    start = time.perf_counter()
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")
            for chunk in data.chunks():
                with conn.begin():
                    rows += _insert_all(
                        conn, _mlflow_rows(tables, chunk, exp, artifact_root, data.seed, base)
                    )
                advance(len(chunk))
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    return Loaded(data.n_runs, rows, seconds, _db_bytes(db))


def _mlflow_rows(
    tables: dict[str, Table],
    chunk: RunChunk,
    experiment_id: int,
    artifact_root: str,
    seed: int,
    base: int,
) -> list[tuple[Table, list[dict[str, Any]]]]:
    runs, params, metrics, latest, tags = [], [], [], [], []
    codes = chunk.params.tolist()
    values = chunk.metrics.tolist()
    for offset in range(len(chunk)):
        index = chunk.start + offset
        rid = run_id("mlflow", seed, index)
        name = run_name(index)
        started = base + index * 1000
        ended = started + 500
        runs.append(
            {
                "run_uuid": rid,
                "name": name,
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": BENCH_USER,
                "status": "FINISHED",
                "start_time": started,
                "end_time": ended,
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"{artifact_root}/{rid}/artifacts",
                "experiment_id": experiment_id,
            }
        )
        tags.append({"key": "mlflow.runName", "value": name, "run_uuid": rid})
        tags.append({"key": "mlflow.user", "value": BENCH_USER, "run_uuid": rid})
        for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
            params.append({"key": key, "value": PARAM_VALUES[code], "run_uuid": rid})
        for key, value in zip(METRIC_KEYS, values[offset], strict=True):
            point = {
                "key": key,
                "value": value,
                "timestamp": ended,
                "step": 0,
                "is_nan": False,
                "run_uuid": rid,
            }
            metrics.append(point)
            latest.append(point)
    return [
        (tables["runs"], runs),
        (tables["tags"], tags),
        (tables["params"], params),
        (tables["metrics"], metrics),
        (tables["latest_metrics"], latest),
    ]
