"""The UI-scale data set (FastTrackML's test shape), bulk-loaded into keel and into MLflow.

FastTrackML's team-scale shape is 50 experiments × 1,500 runs × 1,500 metric keys plus one
run with a 1,000,000-point history. The full cross product is 112 million latest values
(and as many history rows) per system, hours of loading on this machine, so the shape is
kept where a page's cost depends on it and thinned where it does not:

* one **wide** experiment has the full per-experiment shape: ``runs`` runs, every one with
  all ``keys`` metric keys (each logged once: a history row and a latest value) and
  ``params`` params. This is the experiment the runs-table pages are timed on; its cost
  does not depend on what other experiments hold, because every query is by experiment.
* ``experiments - 1`` **narrow** experiments of ``runs`` runs with ``narrow_keys`` metric
  keys each: the experiments list, the project's counts and the store's indexes see 50
  experiments and 75,000 runs.
* one run **long** in the wide experiment has metric ``wave`` with ``long_points`` points.

Rows go in by ``executemany`` (see :mod:`bench.populate`), in the form each system writes
for a finished run: keel's ``runs``, ``run_params``, ``metrics``, ``latest_metrics`` (and the
long history's ``metric_buckets``);
MLflow's ``runs``, ``tags`` (run name, user), ``params``, ``metrics``, ``latest_metrics``.
Values are seeded: run ``i`` of experiment ``e`` has the same values in both stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.populate import (
    Batches,
    BulkInsert,
    KeelTables,
    Loaded,
    MlflowTables,
    _db_bytes,
    bulk_pragmas,
)

SEED = 20_261_207
LONG_KEY = "wave"
LONG_RUN = "long-metric"


@dataclass(frozen=True)
class Shape:
    """How much is loaded (defaults: FastTrackML's shape, thinned as the module says)."""

    experiments: int = 50
    runs: int = 1_500
    keys: int = 1_500
    narrow_keys: int = 10
    params: int = 10
    long_points: int = 1_000_000
    chunk_runs: int = 40  # runs per transaction: 40 × 1,500 = 60,000 latest values

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def metric_keys(self) -> list[str]:
        return [metric_key(j) for j in range(self.keys)]


def metric_key(j: int) -> str:
    return f"metric-{j:04d}"


def param_key(j: int) -> str:
    return f"param-{j:02d}"


def run_name(exp: int, index: int) -> str:
    return f"e{exp:02d}-run-{index:04d}"


def exp_name(exp: int) -> str:
    return "wide" if exp == 0 else f"narrow-{exp:02d}"


def run_uuid(system: str, exp: int, index: int) -> str:
    import hashlib

    return hashlib.md5(f"{system}/{exp}/{index}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """Runs ``start .. start + len - 1`` of experiment ``exp``: param codes and metric values."""

    exp: int
    start: int
    params: np.ndarray  # (runs, params) codes 0..9 → "v0".."v9"
    metrics: np.ndarray  # (runs, keys) in [0, 1)

    def __len__(self) -> int:
        return int(self.params.shape[0])


def chunks(shape: Shape, exp: int) -> Iterator[Chunk]:
    """The runs of experiment ``exp``, identical on every call (seeded per chunk)."""
    keys = shape.keys if exp == 0 else shape.narrow_keys
    for number, start in enumerate(range(0, shape.runs, shape.chunk_runs)):
        size = min(shape.chunk_runs, shape.runs - start)
        rng = np.random.default_rng([SEED, exp, number])
        params = rng.integers(0, 10, size=(size, shape.params), dtype=np.int8)
        yield Chunk(exp, start, params, rng.random((size, keys)))


def wide_truth(
    shape: Shape, key: str, skip_first_param: str | None = None
) -> list[tuple[str, float]]:
    """(run name, value of ``key``) of the wide experiment's runs, best first: the truth a
    page sorted by ``-metrics.<key>`` must show; without the runs whose first param is
    ``skip_first_param``."""
    j = shape.metric_keys.index(key)
    found = [
        (run_name(0, c.start + i), float(v))
        for c in chunks(shape, 0)
        for i, v in enumerate(c.metrics[:, j].tolist())
        if skip_first_param is None or f"v{c.params[i, 0]}" != skip_first_param
    ]
    return sorted(found, key=lambda item: (-item[1], item[0]))


def long_values(shape: Shape) -> np.ndarray:
    x = np.arange(shape.long_points)
    return np.sin(x / 7000.0) + np.linspace(0.0, 1.0, shape.long_points)


@dataclass
class Populated:
    """What was loaded into one system: ids the pages are asked about, and the timings."""

    experiment_ids: list[str]
    wide_run_ids: list[str]  # by run index
    long_run_id: str
    loaded: Loaded

    @property
    def wide_id(self) -> str:
        return self.experiment_ids[0]


# --- keel -----------------------------------------------------------------------------------


def populate_keel(client: Any, shape: Shape) -> Populated:
    """Create the experiments with ``client`` (a ``keel.Client``), then bulk-load the runs."""
    from keel.store import schema
    from keel.store.buckets import COLUMNS, summarise

    exp_ids = [client.create_exp(exp_name(e)).id for e in range(shape.experiments)]
    tables = KeelTables.create()
    buckets = BulkInsert(schema.metric_buckets, COLUMNS)
    base = int(time.time() * 1000) - shape.experiments * shape.runs * 1000
    pkeys = [param_key(j) for j in range(shape.params)]

    def batches(chunk: Chunk) -> Batches:
        run_rows, param_rows, metric_rows = [], [], []
        keys = [metric_key(j) for j in range(chunk.metrics.shape[1])]
        codes = chunk.params.tolist()
        values = chunk.metrics.tolist()
        for offset in range(len(chunk)):
            index = chunk.start + offset
            rid = run_uuid("keel", chunk.exp, index)
            started = base + (chunk.exp * shape.runs + index) * 1000
            ended = started + 500
            name = run_name(chunk.exp, index)
            run_rows.append(tables.run_row(rid, exp_ids[chunk.exp], name, started, ended))
            for key, code in zip(pkeys, codes[offset], strict=True):
                param_rows.append((rid, key, f"v{code}", "str", None))
            for key, value in zip(keys, values[offset], strict=True):
                metric_rows.append((rid, key, value, 0, 0, ended))
        return tables.batches(run_rows, param_rows, metric_rows)

    engine = client.store.engine
    start = time.perf_counter()
    long_id = run_uuid("keel", 0, shape.runs)
    connect = engine.connect().execution_options(keel_write=True)
    with connect as conn, bulk_pragmas(conn, restore=True) as raw:
        rows = _load_experiments(conn, shape, batches)
        now = int(time.time() * 1000)
        points = long_values(shape).tolist()
        with conn.begin():
            tables.runs.run(conn, [tables.run_row(long_id, exp_ids[0], LONG_RUN, now, now + 1)])
            history = [(long_id, LONG_KEY, v, 0, i, now + i) for i, v in enumerate(points)]
            rows += tables.metrics.run(conn, history)
            rows += tables.latest.run(
                conn, [(long_id, LONG_KEY, points[-1], 0, len(points) - 1, now + len(points))]
            )
            # keel's log_batch also folds points from step 64 on into their buckets
            rows += buckets.run(conn, summarise(history))
        raw.execute("ANALYZE")
    seconds = time.perf_counter() - start
    total_runs = shape.experiments * shape.runs + 1
    return Populated(
        exp_ids,
        [run_uuid("keel", 0, i) for i in range(shape.runs)],
        long_id,
        Loaded(total_runs, rows, seconds, _db_bytes(Path(engine.url.database))),
    )


def _load_experiments(conn: Any, shape: Shape, batches: Callable[[Chunk], Batches]) -> int:
    """Every experiment's runs, one transaction a chunk; the rows written."""
    rows = 0
    for exp in range(shape.experiments):
        for chunk in chunks(shape, exp):
            with conn.begin():
                for inserter, table_rows in batches(chunk):
                    rows += inserter.run(conn, table_rows)
    return rows


# --- MLflow ---------------------------------------------------------------------------------


def populate_mlflow(db: Path, artifact_root: str, shape: Shape) -> Populated:
    """Create the experiments with MLflow's own client on ``sqlite:///db``, then bulk-load."""
    from mlflow import MlflowClient
    from sqlalchemy import create_engine

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    exp_ids = [
        client.create_experiment(exp_name(e), artifact_location=f"{artifact_root}/{e}")
        for e in range(shape.experiments)
    ]
    tables = MlflowTables.create()
    base = int(time.time() * 1000) - shape.experiments * shape.runs * 1000
    pkeys = [param_key(j) for j in range(shape.params)]

    def run_row(rid: str, exp: int, name: str, started: int, ended: int) -> tuple[Any, ...]:
        artifacts = f"{artifact_root}/{exp}/{rid}/artifacts"
        return tables.run_row(rid, name, started, ended, artifacts, int(exp_ids[exp]))

    def batches(chunk: Chunk) -> Batches:
        run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
        keys = [metric_key(j) for j in range(chunk.metrics.shape[1])]
        codes = chunk.params.tolist()
        values = chunk.metrics.tolist()
        for offset in range(len(chunk)):
            index = chunk.start + offset
            rid = run_uuid("mlflow", chunk.exp, index)
            name = run_name(chunk.exp, index)
            started = base + (chunk.exp * shape.runs + index) * 1000
            ended = started + 500
            run_rows.append(run_row(rid, chunk.exp, name, started, ended))
            tag_rows.extend(tables.run_tags(rid, name))
            for key, code in zip(pkeys, codes[offset], strict=True):
                param_rows.append((key, f"v{code}", rid))
            for key, value in zip(keys, values[offset], strict=True):
                metric_rows.append((key, value, ended, 0, 0, rid))
        return tables.batches(run_rows, tag_rows, param_rows, metric_rows)

    engine = create_engine(uri)
    start = time.perf_counter()
    long_id = run_uuid("mlflow", 0, shape.runs)
    try:
        with engine.connect() as conn, bulk_pragmas(conn, restore=False) as raw:
            rows = _load_experiments(conn, shape, batches)
            now = int(time.time() * 1000)
            points = long_values(shape).tolist()
            with conn.begin():
                tables.runs.run(conn, [run_row(long_id, 0, LONG_RUN, now, now + 1)])
                tables.tags.run(conn, tables.run_tags(long_id, LONG_RUN))
                rows += tables.metrics.run(
                    conn, [(LONG_KEY, v, now + i, i, 0, long_id) for i, v in enumerate(points)]
                )
                rows += tables.latest.run(
                    conn, [(LONG_KEY, points[-1], now + len(points), len(points) - 1, 0, long_id)]
                )
            raw.execute("ANALYZE")
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    return Populated(
        [str(e) for e in exp_ids],
        [run_uuid("mlflow", 0, i) for i in range(shape.runs)],
        long_id,
        Loaded(shape.experiments * shape.runs + 1, rows, seconds, _db_bytes(db)),
    )
