"""The Evidently side of the drift benchmark: run in Evidently's own venv, prints JSON.

Usage (by :mod:`bench.drift_bench`, with ``.venv-evidently/bin/python``)::

    python bench/drift_evidently.py REFERENCE.parquet CURRENT.parquet SPEC.json [--repeat 2]

Evidently 0.7 cannot share keel's venv (it pins ``plotly<6`` and imports a helper pandas 3
removed), so this file imports nothing from keel or from the ``bench`` package: only the
standard library, pandas and Evidently. It reads the parquet files the keel side reads, tells
Evidently the same column types keel is told (``spec.json``'s ``numerical`` and
``categorical``), and runs ``Report([DataDriftPreset()], include_tests=True)`` with the
preset's defaults.

Timings (seconds, after Evidently is imported):

* ``cold``: read both parquet files, build the two ``Dataset`` objects and run the report;
* ``repeated``: ``--repeat`` more runs on the frames already in memory: a new ``Dataset`` of
  the current frame, the reference ``Dataset`` kept, a new report. Evidently keeps no
  statistics of a reference between reports, so this is what a repeated check costs it at
  best (the reference data read once and kept in memory).

Output: one JSON object with the timings, the import time, and the verdicts of the cold run:
per column its test (Evidently's registered name), statistic, threshold and whether it
drifted (the column's ``Value Drift`` test failed), and the dataset's share of drifted
columns and verdict (the preset's ``Share of Drifted Columns`` test failed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

# what Evidently's metric config calls each test → the name keel and Evidently register
_started = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.legacy.calculations.stattests.registry import _registered_stat_tests  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _started


def _test_names() -> dict[str, str]:
    """Evidently's display names of its tests → their registered names (``wasserstein``)."""
    names: dict[str, str] = {}
    for name, by_type in _registered_stat_tests.items():
        for test in by_type.values():
            names[test.display_name] = name
    return names


def _check(reference: Any, current_frame: Any, definition: Any) -> Any:
    current = Dataset.from_pandas(current_frame, data_definition=definition)
    return Report([DataDriftPreset()], include_tests=True).run(current, reference)


def _verdicts(snapshot: Any, columns: list[str]) -> dict[str, Any]:
    data = snapshot.dict()
    names = _test_names()
    by_metric: dict[str, dict[str, Any]] = {}
    share: float | None = None
    for metric in data["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            by_metric[metric["id"]] = {
                "column": config["column"],
                "test": names.get(config["method"], config["method"]),
                "statistic": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drifted": None,
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    dataset_drifted = None
    for test in data["tests"]:
        metric_id = test["metric_config"]["metric_id"]
        failed = test["status"] == "FAIL"
        if metric_id in by_metric:
            by_metric[metric_id]["drifted"] = failed
        elif test["metric_config"]["params"]["type"].endswith(":DriftedColumnsCount"):
            dataset_drifted = failed
    found = {m["column"]: m for m in by_metric.values()}
    missing = [c for c in columns if c not in found or found[c]["drifted"] is None]
    if missing:
        raise SystemExit(f"Evidently gave no drift verdict for {', '.join(missing)}")
    return {
        "columns": {c: {k: v for k, v in found[c].items() if k != "column"} for c in columns},
        "drift_share": share,
        "drifted": dataset_drifted,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("spec")
    parser.add_argument("--repeat", type=int, default=2, help="runs on the loaded frames")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    numerical, categorical = spec["numerical"], spec["categorical"]

    started = time.perf_counter()
    reference_frame = pd.read_parquet(args.reference)
    current_frame = pd.read_parquet(args.current)
    read = time.perf_counter() - started
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    reference = Dataset.from_pandas(reference_frame, data_definition=definition)
    snapshot = _check(reference, current_frame, definition)
    cold = time.perf_counter() - started

    repeated = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        _check(reference, current_frame, definition)
        repeated.append(time.perf_counter() - started)

    result = {
        "evidently": _version(),
        "pandas": pd.__version__,
        "import_seconds": IMPORT_SECONDS,
        "read_seconds": read,
        "cold_seconds": cold,
        "repeated_seconds": repeated,
        **_verdicts(snapshot, numerical + categorical),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _version() -> str:
    from importlib import metadata

    return metadata.version("evidently")


if __name__ == "__main__":
    sys.exit(main())
