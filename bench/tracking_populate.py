"""Bulk-load the search experiment of the tracking load benchmark into PostgreSQL.

MLflow's k6 search benchmark ran on an experiment of 23,525 runs (of its developers'
database, whose content is not published). Here each system's search experiment gets the
same synthetic runs as the query benchmark (:class:`bench.data.SyntheticRuns`: 20 string
params and 10 metrics logged once, a finished run ``run-0000i`` started ``i`` seconds after
the first), written with PostgreSQL's ``COPY`` straight into each system's own tables after
its server has created the schema and the experiment: MLflow's ``runs``, ``tags``
(``mlflow.runName``, ``mlflow.user``), ``params``, ``metrics`` and ``latest_metrics``;
keel's ``runs``, ``run_params``, ``metrics`` and ``latest_metrics``. Both databases are
``ANALYZE``d afterwards (neither server does it; autovacuum would, at a time of its own).
"""

from __future__ import annotations

import time
from typing import Any

from bench.data import METRIC_KEYS, PARAM_KEYS, PARAM_VALUES, SyntheticRuns, run_id, run_name

BENCH_USER = "bench"
SECOND_MS = 1000


def _copy(cur: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    with cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


def _base(data: SyntheticRuns) -> int:
    return int(time.time() * 1000) - (data.n_runs + 3600) * SECOND_MS


def populate_mlflow(conninfo: str, experiment_id: str, data: SyntheticRuns) -> dict[str, Any]:
    """Insert ``data`` as finished runs of MLflow experiment ``experiment_id``."""
    import psycopg

    base, exp, rows = _base(data), int(experiment_id), 0
    start = time.perf_counter()
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        for chunk in data.chunks():
            run_rows, tag_rows, param_rows, metric_rows = [], [], [], []
            codes, values = chunk.params.tolist(), chunk.metrics.tolist()
            for offset in range(len(chunk)):
                index = chunk.start + offset
                rid, name = run_id("mlflow", data.seed, index), run_name(index)
                started = base + index * SECOND_MS
                ended = started + 500
                run_rows.append(
                    (rid, name, "UNKNOWN", "", "", BENCH_USER, "FINISHED", started, ended,
                     "", "active", f"mlflow-artifacts:/{exp}/{rid}/artifacts", exp)
                )  # fmt: skip
                tag_rows += [("mlflow.runName", name, rid), ("mlflow.user", BENCH_USER, rid)]
                for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
                    param_rows.append((key, PARAM_VALUES[code], rid))
                for key, value in zip(METRIC_KEYS, values[offset], strict=True):
                    metric_rows.append((key, value, ended, 0, False, rid))
            metric_columns = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")
            rows += _copy(
                cur, "runs",
                ("run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
                 "status", "start_time", "end_time", "source_version", "lifecycle_stage",
                 "artifact_uri", "experiment_id"),
                run_rows,
            )  # fmt: skip
            rows += _copy(cur, "tags", ("key", "value", "run_uuid"), tag_rows)
            rows += _copy(cur, "params", ("key", "value", "run_uuid"), param_rows)
            rows += _copy(cur, "metrics", metric_columns, metric_rows)
            rows += _copy(cur, "latest_metrics", metric_columns, metric_rows)
        conn.commit()
    _analyze(conninfo)
    return {"runs": data.n_runs, "rows": rows, "seconds": time.perf_counter() - start}


def populate_keel(conninfo: str, experiment_id: str, data: SyntheticRuns) -> dict[str, Any]:
    """Insert ``data`` as finished runs of keel experiment ``experiment_id``."""
    import psycopg

    base, rows = _base(data), 0
    start = time.perf_counter()
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        for chunk in data.chunks():
            run_rows, param_rows, metric_rows = [], [], []
            codes, values = chunk.params.tolist(), chunk.metrics.tolist()
            for offset in range(len(chunk)):
                index = chunk.start + offset
                rid = run_id("keel", data.seed, index)
                started = base + index * SECOND_MS
                ended = started + 500
                run_rows.append(
                    (rid, experiment_id, run_name(index), "tracking", "finished", started, ended,
                     BENCH_USER, "{}", "active", started)
                )  # fmt: skip
                for key, code in zip(PARAM_KEYS, codes[offset], strict=True):
                    param_rows.append((rid, key, PARAM_VALUES[code], "str"))
                for key, value in zip(METRIC_KEYS, values[offset], strict=True):
                    metric_rows.append((rid, key, value, False, 0, ended))
            metric_columns = ("run_id", "key", "value", "is_nan", "step", "timestamp")
            rows += _copy(
                cur, "runs",
                ("id", "experiment_id", "name", "kind", "status", "start_time", "end_time",
                 "author", "environment", "lifecycle", "created_at"),
                run_rows,
            )  # fmt: skip
            rows += _copy(cur, "run_params", ("run_id", "key", "value", "value_type"), param_rows)
            rows += _copy(cur, "metrics", metric_columns, metric_rows)
            rows += _copy(cur, "latest_metrics", metric_columns, metric_rows)
        conn.commit()
    _analyze(conninfo)
    return {"runs": data.n_runs, "rows": rows, "seconds": time.perf_counter() - start}


def _analyze(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE")


def newest_names(data: SyntheticRuns, count: int) -> list[str]:
    """The names of the ``count`` newest runs, newest first: the page every search returns."""
    return [run_name(i) for i in range(data.n_runs - 1, max(-1, data.n_runs - 1 - count), -1)]
