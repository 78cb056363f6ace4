"""Metric logging: many one-by-one calls, then one large batch, for keel and MLflow.

keel buffers one-by-one points in memory and writes them in batches, so its timing includes
``run.end()``, which flushes what is left. MLflow writes each ``log_metric`` call in its own
transaction; its timing includes ``set_terminated`` for symmetry. Every logged history is
read back and compared with what was sent.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from bench.report import Measure, Report

ONE_BY_ONE_TARGET_MS = 0.1
MLFLOW_MAX_METRICS_PER_BATCH = 1000  # mlflow.utils.validation.MAX_METRICS_PER_BATCH
BATCH_REPEATS = 3


def mlflow_client(db: Path, experiment: str) -> tuple[Any, str]:
    """An MlflowClient on a SQLite file, and a new experiment's id (artifacts beside the db)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    artifacts = (db.parent / f"{db.stem}-artifacts").resolve().as_uri()
    return client, client.create_experiment(experiment, artifact_location=artifacts)


def run(root: Path, points: int, seed: int, report: Report, console: Console) -> None:
    """Run both logging benchmarks and add their measures to ``report``."""
    import keel

    values = np.random.default_rng([seed, 1]).random(points).tolist()
    client = keel.Client(store=str(root / "keel-log"), project="bench")
    ml, exp_id = mlflow_client(root / "mlflow-log.db", "logging")
    try:
        _one_by_one(client, ml, exp_id, values, report, console)
        _batch(client, ml, exp_id, values, report, console)
    finally:
        client.close()


def _one_by_one(
    client: Any, ml: Any, exp_id: str, values: list[float], report: Report, console: Console
) -> None:
    n = len(values)
    console.print(f"[bold]one-by-one[/bold]: {n:,} metric calls, keel…")
    run = client.start_run("one-by-one")
    start = time.perf_counter()
    for i, v in enumerate(values):
        run.log_metrics({"m": v}, step=i)
    run.end()
    keel_s = time.perf_counter() - start
    keel_ok = _check_keel(client, run.id, values, report, "one-by-one")

    console.print(f"[bold]one-by-one[/bold]: {n:,} metric calls, MLflow…")
    run_id = ml.create_run(exp_id).info.run_id
    start = time.perf_counter()
    for i, v in enumerate(values):
        ml.log_metric(run_id, "m", v, step=i)
    ml.set_terminated(run_id)
    mlflow_s = time.perf_counter() - start
    mlflow_ok = _check_mlflow(ml, run_id, values, report, "one-by-one")

    report.add(
        Measure(
            f"one-by-one: {n:,} calls, total",
            "s",
            keel_s,
            mlflow_s,
            correct=keel_ok and mlflow_ok,
            note="keel: run.log_metrics + run.end(); MLflow: log_metric + set_terminated",
        )
    )
    report.add(
        Measure(
            "one-by-one: per call (amortised)",
            "ms",
            keel_s * 1000 / n,
            mlflow_s * 1000 / n,
            target=ONE_BY_ONE_TARGET_MS,
            correct=keel_ok and mlflow_ok,
        )
    )


def _batch(
    client: Any, ml: Any, exp_id: str, values: list[float], report: Report, console: Console
) -> None:
    from mlflow.entities import Metric as MlflowMetric

    from keel.entities import Metric

    n = len(values)
    ts = int(time.time() * 1000)
    keel_points = [Metric("m", v, i, ts) for i, v in enumerate(values)]
    mlflow_points = [MlflowMetric("m", v, ts, i) for i, v in enumerate(values)]
    calls = math.ceil(n / MLFLOW_MAX_METRICS_PER_BATCH)
    console.print(f"[bold]batch[/bold]: {n:,} points, keel and MLflow ({BATCH_REPEATS} times)…")

    keel_times, mlflow_times, ok = [], [], True
    for repeat in range(BATCH_REPEATS):
        run = client.start_run("batch")
        start = time.perf_counter()
        client.log_batch(run, metrics=keel_points)
        keel_times.append(time.perf_counter() - start)
        run.end()
        ok &= _check_keel(client, run.id, values, report, f"batch #{repeat + 1}")

        run_id = ml.create_run(exp_id).info.run_id
        start = time.perf_counter()
        for k in range(0, n, MLFLOW_MAX_METRICS_PER_BATCH):
            ml.log_batch(run_id, metrics=mlflow_points[k : k + MLFLOW_MAX_METRICS_PER_BATCH])
        mlflow_times.append(time.perf_counter() - start)
        ml.set_terminated(run_id)
        ok &= _check_mlflow(ml, run_id, values, report, f"batch #{repeat + 1}")

    report.add(
        Measure(
            f"batch: {n:,} points",
            "ms",
            statistics.median(keel_times) * 1000,
            statistics.median(mlflow_times) * 1000,
            correct=ok,
            note=f"median of {BATCH_REPEATS} fresh runs; keel: 1 log_batch call; MLflow: "
            f"{calls} log_batch call{'s' if calls > 1 else ''} of ≤ "
            f"{MLFLOW_MAX_METRICS_PER_BATCH:,} (its per-call limit)",
        )
    )
    report.notes.append(
        f"MLflow's log_batch accepts at most {MLFLOW_MAX_METRICS_PER_BATCH:,} metrics per call: "
        f"its {n:,}-point batch is {calls} call{'s' if calls > 1 else ''}, timed together."
    )


def _check_keel(client: Any, run_id: str, values: list[float], report: Report, what: str) -> bool:
    history = client.get_metric_history(run_id, "m")
    got = [(p.step, p.value) for p in history]
    return _compare("keel", what, got, values, report)


def _check_mlflow(ml: Any, run_id: str, values: list[float], report: Report, what: str) -> bool:
    history = sorted(ml.get_metric_history(run_id, "m"), key=lambda p: p.step)
    got = [(p.step, p.value) for p in history]
    return _compare("MLflow", what, got, values, report)


def _compare(
    system: str, what: str, got: list[tuple[int, float]], values: list[float], report: Report
) -> bool:
    expected = list(enumerate(values))
    if got == expected:
        return True
    wrong = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None)
    report.problems.append(
        f"{system} {what}: read back {len(got):,} points, expected {len(values):,}"
        + ("" if wrong is None else f"; first difference at position {wrong}")
    )
    return False
