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
)
from bench.logging_bench import mlflow_client
from bench.populate import populate_keel, populate_mlflow
from bench.report import Measure, Report
from bench.timing import repeat

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


def run(root: Path, n_runs: int, seed: int, report: Report, console: Console) -> None:
    """Populate both stores, check both answers, time both queries, add the measures."""
    import keel

    data = SyntheticRuns(n_runs, seed)
    expected = data.expected_top()
    matching = data.matching()
    report.details["query"] = {
        "runs": n_runs,
        "keel_query": repr(KEEL_QUERY),
        "keel_sort": repr(KEEL_SORT),
        "mlflow_filter": MLFLOW_FILTER,
        "mlflow_order_by": MLFLOW_ORDER,
        "matching_runs": matching,
        "limit": QUERY_LIMIT,
    }

    client = keel.Client(store=str(root / "keel-query"), project="bench")
    try:
        exp = client.create_exp("query")
        ml, ml_exp = mlflow_client(root / "mlflow-query.db", "query")
        artifact_root = ml.get_experiment(ml_exp).artifact_location
        keel_db = Path(client.store.engine.url.database)
        mlflow_db = root / "mlflow-query.db"

        with _progress(console) as progress:
            task = progress.add_task("keel: bulk insert", total=n_runs)
            loaded = populate_keel(client, exp.id, data, lambda k: progress.advance(task, k))
            report.populate["keel"] = loaded.as_dict()
            task = progress.add_task("MLflow: bulk insert", total=n_runs)
            loaded = populate_mlflow(
                mlflow_db, ml_exp, artifact_root, data, lambda k: progress.advance(task, k)
            )
            report.populate["MLflow"] = loaded.as_dict()

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

        console.print(f"[bold]query[/bold]: find_runs / search_runs over {n_runs:,} runs…")
        ok = _check("keel", keel_call(), expected, seed, report)
        ok &= _check("mlflow", mlflow_call(), expected, seed, report)
        keel_t, keel_rows = repeat(keel_call, TIMES, warmup=1)
        mlflow_t, mlflow_rows = repeat(mlflow_call, TIMES, warmup=1)
        # The timed calls must have returned the checked answer too.
        ok &= _check("keel", keel_rows, expected, seed, report, quiet=True)
        ok &= _check("mlflow", mlflow_rows, expected, seed, report, quiet=True)
        if ok:
            report.notes.append(
                f"find_runs / search_runs: both returned the true top {len(expected)} runs "
                f"(of {matching:,} matching) in the true order."
            )

        report.add(
            Measure(
                f"query: top {QUERY_LIMIT} of {n_runs:,} runs",
                "ms",
                keel_t.median * 1000,
                mlflow_t.median * 1000,
                target=QUERY_TARGET_MS,
                correct=ok,
                note=f"median of {TIMES} after 1 warm-up; m0 > 0.5 and p0 = 'v1' "
                f"({matching:,} match), sort m0 desc",
            )
        )
        report.details["query"]["keel_seconds"] = list(keel_t.samples)
        report.details["query"]["mlflow_seconds"] = list(mlflow_t.samples)

        keel_sql = _diagnose(client.store.engine, keel_call, keel_db)
        mlflow_sql = _diagnose(_mlflow_engine(ml), mlflow_call, mlflow_db)
        report.details["query"]["keel_sql"] = keel_sql
        report.details["query"]["mlflow_sql"] = mlflow_sql
        if keel_sql.get("seconds") is not None and mlflow_sql.get("seconds") is not None:
            report.add(
                Measure(
                    "query: its id SELECT alone",
                    "ms",
                    keel_sql["seconds"] * 1000,
                    mlflow_sql["seconds"] * 1000,
                    note="diagnostic: the captured SQL re-run through sqlite3, median of 5",
                )
            )
        if keel_t.median * 1000 > QUERY_TARGET_MS:
            _print_plans(console, keel_sql, mlflow_sql)
    finally:
        client.close()


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


def _diagnose(engine: Any, call: Callable[[], Any], db: Path) -> dict[str, Any]:
    """The SELECT with a LIMIT that ``call`` sends, its time alone and its query plan."""
    if engine is None:
        return {"error": "engine not reachable"}
    from sqlalchemy import event

    captured: list[tuple[str, Any]] = []

    def listener(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
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
        plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        out["plan"] = _plan_lines(plan)
        conn.execute(sql, params).fetchall()  # warm-up
        samples = []
        for _ in range(TIMES):
            start = time.perf_counter()
            conn.execute(sql, params).fetchall()
            samples.append(time.perf_counter() - start)
        out["seconds"] = statistics.median(samples)
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
        console.rule(f"{label}: the id SELECT and its EXPLAIN QUERY PLAN")
        if "sql" not in info:
            console.print(info)
            continue
        console.print(info["sql"], markup=False, highlight=False)
        console.print(f"parameters: {', '.join(info['parameters'])}", markup=False)
        if info.get("seconds") is not None:
            console.print(f"alone through sqlite3: {info['seconds'] * 1000:.1f} ms")
        console.print("\n".join(info.get("plan", [])), markup=False, highlight=False)
