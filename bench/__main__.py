"""``python -m bench``: keel vs MLflow (SQLite) on logging and queries, vs pandas on reads.

The serving benchmark (``--only serving``, see :mod:`bench.serving_bench`) compares
``keel serve`` with ``mlflow models serve`` and a bare Starlette app under HTTP load.
The UI benchmark (``--only ui``, see :mod:`bench.ui_bench`) times the web UI's experiment
page over 10,000 runs and its run page with a 100,000-point metric.
The MLflow wire benchmark (``--only mlflow-wire``, see :mod:`bench.mlflow_wire`) has MLflow's
own client log metrics to ``mlflow server`` and to ``keel server``.
The CLI benchmark (``--only cli``, see :mod:`bench.cli_bench`) times ``keel predict``,
``keel runs list``, ``keel models show`` and ``keel --help`` against plain Python.
The drift benchmark (``--only drift``, see :mod:`bench.drift_bench`) compares keel's drift
check with Evidently's ``DataDriftPreset`` (run in a venv of its own, ``.venv-evidently``,
built on first use) on a seeded ``--rows`` × ``--columns`` reference, and measures what live
profiling costs a recording ``keel serve``.
The tracking-load benchmark (``--only tracking-load``, see :mod:`bench.tracking_load`) puts
20 concurrent clients on ``mlflow server``, MLflow's Go backend and ``keel server`` over one
PostgreSQL: ``log_batch`` of 10 metrics, and ``search_runs`` over ~23,500 runs.
The UI-scale benchmark (``--only ui-scale``, see :mod:`bench.ui_scale`) times every UI page and
its JSON twin over 50 experiments × 1,500 runs × 1,500 metric keys, in process and in
Chromium, beside ``mlflow ui`` on the same data.
The container benchmark (``--only container``, see :mod:`bench.container_bench`) builds the
iris model's image with ``keel container build`` and with MLflow's ``build-docker`` Dockerfile
(podman, from one local stand-in of ``python:3.11-slim``), cold, and compares size and time.

Usage::

    python -m bench [--runs 100000] [--points 10000]
                    [--only logging|query|data|lifecycle|serving|ui|mlflow-wire|cli|drift|
                            container|tracking-load|ui-scale]
                    [--rows 1000000] [--columns 100] [--json out.json] [--repeat 5]
                    [--analyze] [--seed N]
                    [--workers 1] [--seconds 10] [--rounds 3] [--tmp DIR] [--keep]

Everything happens in a temporary folder (removed at the end unless ``--keep``). The exit
status is 1 when either system returned a wrong answer, else 0; missed targets are shown in
the table but do not change the exit status.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from rich.console import Console

import bench  # noqa: F401  (sets MLflow's environment before it is imported)
from bench.data import DEFAULT_SEED
from bench.report import Report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark keel against MLflow (SQLite backend) and plain pandas (data reads).",
    )
    parser.add_argument(
        "--runs", type=int, default=100_000, help="runs loaded for the query benchmark"
    )
    parser.add_argument(
        "--points", type=int, default=10_000, help="metric points for the logging benchmarks"
    )
    parser.add_argument(
        "--only",
        choices=(
            "logging",
            "query",
            "data",
            "lifecycle",
            "serving",
            "ui",
            "mlflow-wire",
            "cli",
            "drift",
            "container",
            "tracking-load",
            "ui-scale",
        ),
        help="run one benchmark only",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        help="rows of the data benchmark's CSV and parquet files, and of the drift "
        "benchmark's reference (its current window has a tenth as many)",
    )
    parser.add_argument(
        "--columns",
        type=int,
        default=100,
        help="columns of the drift benchmark's data (70%% numbers, 30%% categories; default 100)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        metavar="N",
        help="timed query and data-read calls per system, after 1 warm-up, and keel's drift "
        "checks (default 5; the median is shown)",
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE on both query stores after loading (neither system does by itself)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="server worker processes of each system in the serving benchmark (default 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        metavar="N",
        help="serving, mlflow-wire, drift-recording and container benchmark rounds; each "
        "system's median round is shown (default 3)",
    )
    parser.add_argument(
        "--systems",
        metavar="A,B",
        help="serving benchmark: only these systems (bare, bentoml, mlflow, keel, keel-nobatch, "
        "keel-inline, keel-recording)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="length of each serving measurement (default 10; the drift benchmark's "
        "recording runs last at least 30)",
    )
    parser.add_argument(
        "--cli-times",
        type=int,
        default=10,
        metavar="N",
        help="cli benchmark: subprocess runs of each command and its peer (default 10)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the data")
    parser.add_argument(
        "--tmp", type=Path, help="folder to create the temporary stores in (default: system tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    args = parser.parse_args(argv)
    counts = (args.runs, args.points, args.repeat, args.rows, args.workers, args.rounds)
    if min(*counts, args.cli_times) < 1:
        parser.error(
            "--runs, --points, --rows, --repeat, --workers and --rounds must be at least 1"
        )
    if args.columns < 2:
        parser.error("--columns must be at least 2 (a number and a category)")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def _quiet_libraries() -> None:
    for name in ("mlflow", "alembic", "sqlalchemy", "keel"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", module="pydantic")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    try:
        if args.only not in ("data", "lifecycle", "ui", "cli", "drift"):
            import mlflow  # noqa: F401
    except ImportError:
        console.print("[red]MLflow is not installed: make install (mlflow==3.17.2)[/red]")
        return 2
    _quiet_libraries()  # after the import: MLflow sets its logger's level when imported

    report = Report(
        config={
            "runs": args.runs,
            "points": args.points,
            "rows": args.rows,
            "columns": args.columns,
            "only": args.only,
            "seed": args.seed,
            "repeat": args.repeat,
            "analyze": args.analyze,
            "workers": args.workers,
            "seconds": args.seconds,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    root = Path(tempfile.mkdtemp(prefix="keel-bench-", dir=args.tmp))
    console.print(f"[dim]temporary stores in {root}[/dim]")
    try:
        if args.only in (None, "logging"):
            from bench import logging_bench

            logging_bench.run(root, args.points, args.seed, report, console)
        if args.only in (None, "query"):
            from bench import query_bench

            query_bench.run(root, args.runs, args.seed, report, console, args.repeat, args.analyze)
        if args.only in (None, "data"):
            from bench import data_bench

            data_bench.run(root, args.rows, args.seed, report, console, args.repeat)
        if args.only in (None, "lifecycle"):
            from bench import lifecycle_bench

            lifecycle_bench.run(root, report, console, args.repeat)
        if args.only in (None, "serving"):
            from bench import serving_bench

            serving_bench.run(
                root, report, console, args.workers, args.seconds, args.rounds, args.systems
            )
        if args.only in (None, "ui"):
            from bench import ui_bench

            ui_bench.run(root, args.seed, report, console, args.repeat)
        if args.only in (None, "mlflow-wire"):
            from bench import mlflow_wire

            mlflow_wire.run(root, report, console, args.rounds)
        if args.only in (None, "cli"):
            from bench import cli_bench

            cli_bench.run(root, report, console, args.cli_times)
        if args.only in (None, "drift"):
            from bench import drift_bench

            drift_bench.run(
                root,
                report,
                console,
                rows=args.rows,
                columns=args.columns,
                seed=args.seed,
                repeat=args.repeat,
                rounds=args.rounds,
                seconds=args.seconds,
            )
        if args.only in (None, "container"):
            from bench import container_bench

            container_bench.run(root, report, console, args.rounds, keep=args.keep)
        if args.only in (None, "tracking-load"):
            from bench import tracking_load

            tracking_load.run(root, report, console, rounds=args.rounds, seconds=args.seconds)
        if args.only in (None, "ui-scale"):
            from bench import ui_scale

            ui_scale.run(root, report, console, times=max(args.repeat, 10))
    finally:
        if args.keep:
            console.print(f"[dim]kept {root}[/dim]")
        else:
            from keel.store.engine import dispose_engines

            dispose_engines()
            shutil.rmtree(root, ignore_errors=True)

    report.print(console)
    if args.json:
        report.write_json(args.json)
        console.print(f"[dim]wrote {args.json}[/dim]")
    wrong = any(not m.correct for m in report.measures) or bool(report.problems)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
