"""``find_runs`` vs MLflow ``search_runs`` over many bulk-loaded runs.

Both stores get the same seeded runs (see :mod:`bench.data`); both answer "metric m0 above
0.5 and param p0 equal to v1, highest m0 first, top 100". Each answer is checked against
the truth computed with numpy, run by run through the run names and ids, before anything is
timed: a fast wrong answer is not a result. Then each call is timed 5 times after a warm-up.

For diagnosis the SELECT each system sends is captured, timed on its own through
``sqlite3`` and explained with ``EXPLAIN QUERY PLAN``.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.data import (
    QUERY_LIMIT,
    QUERY_METRIC,
    QUERY_PARAM,
    QUERY_THRESHOLD,
    QUERY_VALUE,
    SyntheticRuns,
    run_id,
    run_name,
)
from bench.logging_bench import mlflow_client
from bench.populate import populate_keel, populate_mlflow
from bench.report import Measure, Report
from bench.timing import Timings, repeat

QUERY_TARGET_MS = 50.0
TIMES = 5
KEEL_QUERY = {
    f"metrics.{QUERY_METRIC}": {"$gt": QUERY_THRESHOLD},
    f"params.{QUERY_PARAM}": QUERY_VALUE,
}
KEEL_SORT = [(f"metrics.{QUERY_METRIC}", -1)]
MLFLOW_FILTER = (
    f"metrics.{QUERY_METRIC} > {QUERY_THRESHOLD} and params.{QUERY_PARAM} = '{QUERY_VALUE}'"
)
MLFLOW_ORDER = [f"metrics.{QUERY_METRIC} DESC"]

Row = tuple[str, str, float, str]  # (id, name, m0, p0)


def run(
    root: Path,
    n_runs: int,
    seed: int,
    report: Report,
    console: Console,
    times: int = TIMES,
    analyze: bool = False,
) -> None:
    """Populate both stores, check both answers, time both queries, add the measures."""
    import keel

    data = SyntheticRuns(n_runs, seed)
    expected = data.expected_top()
    matching = data.matching()
    details: dict[str, Any] = {
        "runs": n_runs,
        "keel_query": repr(KEEL_QUERY),
        "keel_sort": repr(KEEL_SORT),
        "mlflow_filter": MLFLOW_FILTER,
        "mlflow_order_by": MLFLOW_ORDER,
        "matching_runs": matching,
        "limit": QUERY_LIMIT,
        "timed_calls": times,
        "analyze": analyze,
    }
    report.details["query"] = details

    client = keel.Client(store=str(root / "keel-query"), project="bench")
    try:
        exp = client.create_exp("query")
        ml, ml_exp = mlflow_client(root / "mlflow-query.db", "query")
        artifact_root = ml.get_experiment(ml_exp).artifact_location
        keel_db = Path(client.store.engine.url.database)
        mlflow_db = root / "mlflow-query.db"

        with _progress(console) as progress:
            task = progress.add_task("keel: bulk insert  ", total=n_runs)
            loaded = populate_keel(client, exp.id, data, lambda k: progress.advance(task, k))
            report.populate["keel"] = loaded.as_dict()
            task = progress.add_task("MLflow: bulk insert", total=n_runs)
            loaded = populate_mlflow(
                mlflow_db, ml_exp, artifact_root, data, lambda k: progress.advance(task, k)
            )
            report.populate["MLflow"] = loaded.as_dict()
        _check_loaded(client, ml, data, report)
        if analyze:
            for db in (keel_db, mlflow_db):
                with closing(sqlite3.connect(db)) as conn:
                    conn.execute("ANALYZE")
            report.notes.append("--analyze: ANALYZE ran on both stores after loading.")

        def keel_call() -> list[Row]:
            found = client.find_runs(KEEL_QUERY, sort=KEEL_SORT, limit=QUERY_LIMIT)
            return [
                (r.id, r.name, r.metrics.get(QUERY_METRIC), r.params.get(QUERY_PARAM))
                for r in found
            ]

        def mlflow_call() -> list[Row]:
            found = ml.search_runs(
                [ml_exp],
                filter_string=MLFLOW_FILTER,
                order_by=MLFLOW_ORDER,
                max_results=QUERY_LIMIT,
            )
            return [
                (
                    r.info.run_id,
                    r.info.run_name,
                    r.data.metrics.get(QUERY_METRIC),
                    r.data.params.get(QUERY_PARAM),
                )
                for r in found
            ]

        console.print(f"[bold]query[/bold]: find_runs over {n_runs:,} runs, keel…")
        keel_t, keel_ok, keel_sql = _measure(
            "keel", keel_call, client.store.engine, keel_db, expected, seed, times, report
        )
        console.print(
            f"  keel: {keel_t.median * 1000:,.1f} ms (median of {times}); "
            f"MLflow search_runs over {n_runs:,} runs…"
        )
        mlflow_t, mlflow_ok, mlflow_sql = _measure(
            "mlflow",
            mlflow_call,
            _mlflow_engine(ml),
            mlflow_db,
            expected,
            seed,
            times,
            report,
            console,
        )
        ok = keel_ok and mlflow_ok
        if ok:
            report.notes.append(
                f"find_runs / search_runs: both returned the true top {len(expected)} runs "
                f"(of {matching:,} matching) in the true order, on every call."
            )
        report.add(
            Measure(
                f"query: top {QUERY_LIMIT} of {n_runs:,} runs",
                "ms",
                keel_t.median * 1000,
                mlflow_t.median * 1000,
                target=QUERY_TARGET_MS,
                correct=ok,
                note=f"median of {times} after 1 warm-up; m0 > 0.5 and p0 = 'v1' "
                f"({matching:,} match), sort m0 desc, limit {QUERY_LIMIT}, full run records",
            )
        )
        details["keel_seconds"] = list(keel_t.samples)
        details["mlflow_seconds"] = list(mlflow_t.samples)
        details["keel_sql"] = keel_sql
        details["mlflow_sql"] = mlflow_sql
        if keel_sql.get("seconds") is not None and mlflow_sql.get("seconds") is not None:
            report.add(
                Measure(
                    "query: its main SELECT alone",
                    "ms",
                    keel_sql["seconds"] * 1000,
                    mlflow_sql["seconds"] * 1000,
                    note="diagnostic: the filtered, sorted, limited SELECT each system sent "
                    "(before it loads params, metrics and tags), re-run through sqlite3 "
                    f"(median of {TIMES}, or 1 run when it takes over a second)",
                )
            )
        if keel_t.median * 1000 > QUERY_TARGET_MS:
            _print_plans(console, keel_sql, mlflow_sql)
    finally:
        client.close()


def _measure(
    system: str,
    call: Callable[[], list[Row]],
    engine: Any,
    db: Path,
    expected: list[tuple[str, float]],
    seed: int,
    times: int,
    report: Report,
    console: Console | None = None,
) -> tuple[Timings, bool, dict[str, Any]]:
    """Warm up (capturing the SQL and checking the answer), then time ``times`` calls."""
    start = time.perf_counter()
    captured, rows = _capture(engine, call)
    warmup = time.perf_counter() - start
    ok = _check(system, rows, expected, seed, report)
    if console is not None and warmup > 10:
        console.print(
            f"  the warm-up call took {warmup:,.0f} s: {times} timed calls will take about "
            f"{warmup * times / 60:,.0f} min (--repeat sets how many)"
        )
    timings, rows = repeat(call, times, warmup=0)
    ok &= _check(system, rows, expected, seed, report, quiet=not ok)
    return timings, ok, _diagnose(captured, db)


def _check_loaded(client: Any, ml: Any, data: SyntheticRuns, report: Report) -> None:
    """Read a few loaded runs back through each client: the bulk rows must be real runs."""
    problems = len(report.problems)
    indices = sorted({0, data.n_runs // 2, data.n_runs - 1})
    for index in indices:
        params, metrics = data.run(index)
        run = client.get_run(run_id("keel", data.seed, index))
        if (run.name, run.params, run.metrics, run.status) != (
            run_name(index),
            params,
            metrics,
            "finished",
        ):
            report.problems.append(f"keel: loaded run {index} does not read back as written")
        got = ml.get_run(run_id("mlflow", data.seed, index))
        if (got.info.run_name, got.data.params, got.data.metrics, got.info.status) != (
            run_name(index),
            params,
            metrics,
            "FINISHED",
        ):
            report.problems.append(f"MLflow: loaded run {index} does not read back as written")
    if len(report.problems) == problems:
        report.notes.append(
            f"bulk-loaded runs {', '.join(map(str, indices))} read back through keel.get_run "
            "and MlflowClient.get_run with the params, metrics and status written."
        )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _check(
    system: str,
    got: list[Row],
    expected: list[tuple[str, float]],
    seed: int,
    report: Report,
    quiet: bool = False,
) -> bool:
    """Whether ``got`` is the true answer; says what differs in ``report.problems``."""
    problems = []
    names = [name for _, name, _, _ in got]
    if names != [name for name, _ in expected]:
        first = next(
            (i for i, (a, (b, _)) in enumerate(zip(names, expected, strict=False)) if a != b),
            min(len(names), len(expected)),
        )
        problems.append(
            f"returned {len(got)} runs, expected {len(expected)}; first difference at "
            f"position {first}: {names[first] if first < len(names) else None!r} instead of "
            f"{expected[first][0] if first < len(expected) else None!r}"
        )
    for (rid, name, m0, p0), (_, true_m0) in zip(got, expected, strict=False):
        index = int(name.rsplit("-", 1)[1]) if name and name.startswith("run-") else -1
        if rid != run_id(system, seed, index):
            problems.append(f"run {name} came back with id {rid}, which is not its id")
            break
        if m0 != true_m0 or p0 != QUERY_VALUE:
            problems.append(f"run {name} came back with m0={m0!r}, p0={p0!r}")
            break
    if problems and not quiet:
        label = "keel find_runs" if system == "keel" else "MLflow search_runs"
        report.problems.extend(f"{label}: {p}" for p in problems)
    return not problems


# --- SQL diagnostics ------------------------------------------------------------------------


def _mlflow_engine(ml: Any) -> Any:
    try:
        return ml._tracking_client.store.engine
    except AttributeError:  # a private attribute: the diagnostics are optional
        return None


def _capture(engine: Any, call: Callable[[], Any]) -> tuple[list[tuple[str, Any]], Any]:
    """The statements ``call`` sends through ``engine``, and its result."""
    captured: list[tuple[str, Any]] = []
    if engine is None:
        return captured, call()
    from sqlalchemy import event

    def listener(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return captured, result


def _diagnose(captured: list[tuple[str, Any]], db: Path) -> dict[str, Any]:
    """The first SELECT with a LIMIT among ``captured``: its time alone and its query plan."""
    selects = [
        (s, p) for s, p in captured if s.lstrip().upper().startswith("SELECT") and "LIMIT" in s
    ]
    if not selects:
        return {"error": "no SELECT … LIMIT captured", "statements": [s for s, _ in captured]}
    sql, params = selects[0]
    params = tuple(params) if params is not None else ()
    out: dict[str, Any] = {"sql": sql, "parameters": [repr(p) for p in params]}
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        out["plan"] = _plan_lines(conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        samples = []
        for _ in range(TIMES + 1):  # the first is a warm-up
            start = time.perf_counter()
            conn.execute(sql, params).fetchall()
            samples.append(time.perf_counter() - start)
            if samples[0] > 1:  # slow: one run says enough
                break
        out["seconds"] = statistics.median(samples[1:] or samples)
    finally:
        conn.close()
    return out


def _plan_lines(rows: list[tuple[int, int, int, str]]) -> list[str]:
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def _print_plans(console: Console, keel_sql: dict[str, Any], mlflow_sql: dict[str, Any]) -> None:
    for label, info in (("keel", keel_sql), ("MLflow", mlflow_sql)):
        console.rule(f"{label}: the main SELECT and its EXPLAIN QUERY PLAN")
        if "sql" not in info:
            console.print(info)
            continue
        console.print(info["sql"], markup=False, highlight=False)
        console.print(f"parameters: {', '.join(info['parameters'])}", markup=False)
        if info.get("seconds") is not None:
            console.print(f"alone through sqlite3: {info['seconds'] * 1000:.1f} ms")
        console.print("\n".join(info.get("plan", [])), markup=False, highlight=False)
