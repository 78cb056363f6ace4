"""Bulk-load the synthetic runs into keel's and MLflow's own SQLite schemas.

Going through either client would take hours for 100,000 runs, so each store is filled by
``executemany`` inserts (about 10,000 rows per call) straight into its tables, after the
client has created the schema and the experiment. The rows are what each system writes for a
finished run with 20 string params and 10 metrics logged once: keel's ``runs``,
``run_params``, ``metrics`` and ``latest_metrics``; MLflow's ``runs``, ``params``,
``metrics``, ``latest_metrics`` and the ``mlflow.runName`` / ``mlflow.user`` tags.

The INSERTs name their columns from each system's own SQLAlchemy tables (keel's
``keel.store.schema``, MLflow's ``dbmodels.models``), and every NOT NULL column without a
default must be given. Rows go to the driver's ``executemany`` as tuples already in their
stored form (JSON as text, booleans as 0/1): SQLAlchemy's per-row parameter processing was
over a third of the loading time. ``PRAGMA synchronous=OFF`` and a 256 MB page cache are set
on the loading connection only (keel's pooled connection gets its settings back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table

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


class BulkInsert:
    """``INSERT INTO table (columns…)`` run with the driver's executemany on tuples."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
        required = {
            c.name
            for c in table.c
            if not c.nullable
            and c.default is None
            and c.server_default is None
            and not (c.primary_key and c.autoincrement is True)
        }
        missing = required - set(columns)
        if missing:
            raise ValueError(f"{table.name}: required column(s) {sorted(missing)} not given")
        self.table = table
        self.columns = tuple(columns)
        self._sql: str | None = None

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        if self._sql is None:
            quote = conn.dialect.identifier_preparer.quote
            names = ", ".join(quote(c) for c in self.columns)
            marks = ", ".join("?" for _ in self.columns)
            self._sql = f"INSERT INTO {quote(self.table.name)} ({names}) VALUES ({marks})"
        conn.exec_driver_sql(self._sql, rows)
        return len(rows)


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


@contextmanager
def bulk_pragmas(conn: Connection, restore: bool) -> Iterator[Any]:
    """The loading connection's SQLite settings (``synchronous=OFF``, a 256 MB page cache),
    given back afterwards when ``restore`` (a pooled connection keel uses again); yields the
    driver's connection."""
    raw = conn.connection.driver_connection
    cache_size = raw.execute("PRAGMA cache_size").fetchone()[0] if restore else None
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")
    try:
        yield raw
    finally:
        if restore:
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute(f"PRAGMA cache_size={cache_size}")


Batches = list[tuple[BulkInsert, list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class KeelTables:
    """keel's tables of a finished run, with the columns the bulk loads fill."""

    runs: BulkInsert
    params: BulkInsert
    metrics: BulkInsert
    latest: BulkInsert

    @classmethod
    def create(cls) -> KeelTables:
        from keel.store import schema as t

        metric_columns = ("run_id", "key", "value", "is_nan", "step", "timestamp")
        return cls(
            BulkInsert(t.runs, KEEL_RUN_COLUMNS),
            BulkInsert(t.run_params, ("run_id", "key", "value", "value_type", "value_num")),
            BulkInsert(t.metrics, metric_columns),
            BulkInsert(t.latest_metrics, metric_columns),
        )

    @staticmethod
    def run_row(rid: str, experiment_id: str, name: str, started: int, ended: int) -> tuple:
        """A finished tracking run, in KEEL_RUN_COLUMNS' order (environment as JSON text)."""
        return (
            rid,
            experiment_id,
            name,
            "tracking",
            "finished",
            started,
            ended,
            None,
            BENCH_USER,
            "{}",
            None,
            "active",
            started,
        )

    def batches(self, run_rows: list, param_rows: list, metric_rows: list) -> Batches:
        """Rows in insert order; every metric logged once is also its run's latest value."""
        return [
            (self.runs, run_rows),
            (self.params, param_rows),
            (self.metrics, metric_rows),
            (self.latest, metric_rows),
        ]


KEEL_RUN_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "kind",
    "status",
    "start_time",
    "end_time",
    "parent_id",
    "author",
    "environment",
    "failure",
    "lifecycle",
    "created_at",
)


@dataclass(frozen=True)
class MlflowTables:
    """MLflow's tables of a finished run, with the columns the bulk loads fill."""

    runs: BulkInsert
    tags: BulkInsert
    params: BulkInsert
    metrics: BulkInsert
    latest: BulkInsert

    @classmethod
    def create(cls) -> MlflowTables:
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )

        metric_columns = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")
        return cls(
            BulkInsert(SqlRun.__table__, MLFLOW_RUN_COLUMNS),
            BulkInsert(SqlTag.__table__, ("key", "value", "run_uuid")),
            BulkInsert(SqlParam.__table__, ("key", "value", "run_uuid")),
            BulkInsert(SqlMetric.__table__, metric_columns),
            BulkInsert(SqlLatestMetric.__table__, metric_columns),
        )

    @staticmethod
    def run_row(
        rid: str, name: str, started: int, ended: int, artifact_uri: str, experiment_id: int
    ) -> tuple:
        """A finished run, in MLFLOW_RUN_COLUMNS' order."""
        return (
            rid,
            name,
            "UNKNOWN",
            "",
            "",
            BENCH_USER,
            "FINISHED",
            started,
            ended,
            None,
            "",
            "active",
            artifact_uri,
            experiment_id,
        )

    @staticmethod
    def run_tags(rid: str, name: str) -> list[tuple[str, str, str]]:
        """The tags MLflow's client sets on every run: its name and its user."""
        return [("mlflow.runName", name, rid), ("mlflow.user", BENCH_USER, rid)]

    def batches(
        self, run_rows: list, tag_rows: list, param_rows: list, metric_rows: list
    ) -> Batches:
        """Rows in insert order; every metric logged once is also its run's latest value."""
        return [
            (self.runs, run_rows),
            (self.tags, tag_rows),
            (self.params, param_rows),
            (self.metrics, metric_rows),
            (self.latest, metric_rows),
        ]


MLFLOW_RUN_COLUMNS = (
    "run_uuid",
    "name",
    "source_type",
    "source_name",
    "entry_point_name",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "deleted_time",
    "source_version",
    "lifecycle_stage",
    "artifact_uri",
    "experiment_id",
)


def _load(
    conn: Connection,
    data: SyntheticRuns,
    make_rows: Callable[[RunChunk], Batches],
    advance: Advance,
) -> int:
    rows = 0
    for chunk in data.chunks():
        batches = make_rows(chunk)
        with conn.begin():
            for inserter, table_rows in batches:
                rows += inserter.run(conn, table_rows)
        advance(len(chunk))
    return rows


# --- keel -----------------------------------------------------------------------------------


def populate_keel(client: Any, experiment_id: str, data: SyntheticRuns, advance: Advance) -> Loaded:
    """Insert ``data`` as finished runs of ``experiment_id`` into keel's tables."""
    tables = KeelTables.create()
    base = int(time.time() * 1000) - data.n_runs * 1000
    seed = data.seed

    def make_rows(chunk: RunChunk) -> Batches:
        run_rows, param_rows, metric_rows = [], [], []
        codes = chunk.params.tolist()
        values = chunk.metrics.tolist()
        for offset in range(len(chunk)):
            index = chunk.start + offset
            rid = run_id("keel", seed, index)
            started = base + index * 1000
            ended = started + 500
            run_rows.append(tables.run_row(rid, experiment_id, run_name(index), started, ended))
            for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
                param_rows.append((rid, key, PARAM_VALUES[code], "str", None))
            for key, value in zip(METRIC_KEYS, values[offset], strict=True):
                metric_rows.append((rid, key, value, 0, 0, ended))
        return tables.batches(run_rows, param_rows, metric_rows)

    engine = client.store.engine
    start = time.perf_counter()
    connect = engine.connect().execution_options(keel_write=True)
    with connect as conn, bulk_pragmas(conn, restore=True):
        rows = _load(conn, data, make_rows, advance)
    seconds = time.perf_counter() - start
    return Loaded(data.n_runs, rows, seconds, _db_bytes(Path(engine.url.database)))


# --- MLflow ---------------------------------------------------------------------------------


def populate_mlflow(
    db: Path, experiment_id: str, artifact_root: str, data: SyntheticRuns, advance: Advance
) -> Loaded:
    """Insert ``data`` as finished runs of ``experiment_id`` into MLflow's tables in ``db``."""
    from sqlalchemy import create_engine

    tables = MlflowTables.create()
    base = int(time.time() * 1000) - data.n_runs * 1000
    exp = int(experiment_id)
    seed = data.seed

    def make_rows(chunk: RunChunk) -> Batches:
        run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
        codes = chunk.params.tolist()
        values = chunk.metrics.tolist()
        for offset in range(len(chunk)):
            index = chunk.start + offset
            rid = run_id("mlflow", seed, index)
            name = run_name(index)
            started = base + index * 1000
            ended = started + 500
            artifacts = f"{artifact_root}/{rid}/artifacts"
            run_rows.append(tables.run_row(rid, name, started, ended, artifacts, exp))
            tag_rows.extend(tables.run_tags(rid, name))
            for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
                param_rows.append((key, PARAM_VALUES[code], rid))
            for key, value in zip(METRIC_KEYS, values[offset], strict=True):
                metric_rows.append((key, value, ended, 0, 0, rid))
        return tables.batches(run_rows, tag_rows, param_rows, metric_rows)

    engine = create_engine(f"sqlite:///{db}")
    start = time.perf_counter()
    try:
        with engine.connect() as conn, bulk_pragmas(conn, restore=False):
            rows = _load(conn, data, make_rows, advance)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    return Loaded(data.n_runs, rows, seconds, _db_bytes(db))
