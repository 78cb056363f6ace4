"""Reading data through keel's data sources vs plain pandas on the same files.

A seeded frame of N rows × 10 columns (4 float, 3 int, 2 text, 1 datetime) is written
once as CSV and once as parquet; each file is then read through a keel data source
(``DataCatalog(...).source(name).get_dataframe()``, no caching) and with plain
``pandas.read_csv`` / ``pandas.read_parquet``, interleaved so that machine noise falls on
both alike. keel's answer must equal pandas' before anything is timed. Target: keel's
overhead ≤ 5% (keel's median ≤ 1.05 × pandas' median).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.report import Measure, Report

OVERHEAD_TARGET = 0.05


def make_frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01T00:00:00")
    return pd.DataFrame(
        {
            "f0": rng.normal(size=rows),
            "f1": rng.uniform(size=rows),
            "f2": rng.exponential(size=rows),
            "f3": rng.normal(100, 15, size=rows).round(3),
            "i0": rng.integers(0, 1_000_000, size=rows),
            "i1": rng.integers(-50, 50, size=rows),
            "i2": rng.integers(0, 2, size=rows),
            "s0": rng.choice(["red", "green", "blue", "amber"], size=rows),
            "s1": np.char.add("c", rng.integers(0, 10_000, size=rows).astype(str)),
            "when": start + rng.integers(0, 10**8, size=rows).astype("timedelta64[s]"),
        }
    )


def interleaved(calls: dict[str, Callable[[], Any]], times: int) -> dict[str, list[float]]:
    """Time each call ``times`` times, taking turns in alternating order, after a warm-up."""
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for _ in range(times):
        for name in order:
            call = calls[name]
            gc.collect()
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
        order.reverse()  # A B B A …: neither side always goes first (caches, CPU boost)
    return samples


def own_work(call: Callable[[], Any], reader: str, times: int = 3) -> tuple[float, float]:
    """(keel's own seconds per call, seconds inside pandas' ``reader`` per call), by cProfile.

    Everything ``call`` does outside the pandas reader is what keel adds; cProfile inflates
    it a little (it charges every Python call), so this is an upper bound.
    """
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(times):
        call()
    profile.disable()
    stats = pstats.Stats(profile)
    inside = sum(
        row[3]  # cumulative time
        for (filename, _, function), row in stats.stats.items()  # type: ignore[attr-defined]
        if function == reader and "pandas" in filename
    )
    total = stats.total_tt  # type: ignore[attr-defined]
    return (total - inside) / times, inside / times


def check(got: Any, expected: Any, frame: Any, label: str, report: Report) -> bool:
    """Whether keel's frame equals pandas' and (but for dtype units) the frame written."""
    from pandas.testing import assert_frame_equal

    try:
        assert_frame_equal(got, expected, check_exact=True)
    except AssertionError as exc:
        report.problems.append(f"data: keel's {label} frame differs from pandas': {exc}")
        return False
    try:
        # CSV gives the datetimes back as text, parquet in ms: compare them in the frame's unit.
        assert_frame_equal(got.astype({"when": frame["when"].dtype}), frame, check_exact=True)
    except AssertionError as exc:
        report.problems.append(f"data: the {label} read differs from the frame written: {exc}")
        return False
    return True


def run(root: Path, rows: int, seed: int, report: Report, console: Console, times: int) -> None:
    """Write the files, check keel's frames, time both readers, add the measures."""
    import pandas as pd

    from keel.config import parse_config
    from keel.data import DataCatalog

    folder = root / "data"
    folder.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]data[/bold]: writing a {rows:,}-row, 10-column frame as CSV and parquet…")
    frame = make_frame(rows, seed)
    csv_path, parquet_path = folder / "big.csv", folder / "big.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    catalog = DataCatalog(
        parse_config(
            "datasources:\n"
            "  big_csv: {type: csv, path: big.csv, expires: 0}\n"
            "  big_parquet: {type: parquet, path: big.parquet, expires: 0}\n",
            env={},
            base_dir=folder,
        )
    )
    report.details["data"] = {
        "rows": rows,
        "columns": frame.shape[1],
        "csv_bytes": csv_path.stat().st_size,
        "parquet_bytes": parquet_path.stat().st_size,
        "timed_calls": times,
    }
    cases = [
        ("CSV", "big_csv", "read_csv", lambda: pd.read_csv(csv_path)),
        ("parquet", "big_parquet", "read_parquet", lambda: pd.read_parquet(parquet_path)),
    ]
    for label, source_name, reader, pandas_call in cases:
        source = catalog.source(source_name)
        correct = check(source.get_dataframe(), pandas_call(), frame, label, report)
        console.print(f"  {label}: keel and pandas, {times} calls each, interleaved…")
        samples = interleaved({"keel": source.get_dataframe, "pandas": pandas_call}, times)
        keel_s = statistics.median(samples["keel"])
        pandas_s = statistics.median(samples["pandas"])
        overhead = keel_s / pandas_s - 1
        best_overhead = min(samples["keel"]) / min(samples["pandas"]) - 1
        own_s, inside_s = own_work(source.get_dataframe, reader)
        report.details["data"][label] = {
            "keel_s": samples["keel"],
            "pandas_s": samples["pandas"],
            "overhead_pct": overhead * 100,
            "best_overhead_pct": best_overhead * 100,
            "keel_own_s": own_s,
            "inside_pandas_s": inside_s,
        }
        report.notes.append(
            f"data, {label}: keel's own work (cProfile, outside pandas.{reader}) "
            f"{own_s * 1e3:.2f} ms per call = {own_s / inside_s:.2%} of the read; "
            f"overhead best-of-{times} {best_overhead:+.1%}"
        )
        report.add(
            Measure(
                name=f"read {rows:,} rows of {label}",
                unit="s",
                keel=keel_s,
                mlflow=pandas_s,
                target=pandas_s * (1 + OVERHEAD_TARGET),
                correct=correct,
                peer="pandas",
                note=(
                    f"median of {times}, interleaved in alternating order; keel overhead "
                    f"{overhead:+.1%} (target ≤ {OVERHEAD_TARGET:.0%})"
                ),
            )
        )
