"""The web UI's two heavy pages, timed through the ASGI app: ``python -m bench --only ui``.

A temporary embedded store gets 10,000 finished runs (bulk-loaded like the query benchmark,
see :mod:`bench.populate`: 20 params and 10 metrics each) and one run whose metric ``wave``
has 100,000 points (written with one ``Client.log_batch``, the store's batch path). The
platform server's app then answers, through Starlette's ``TestClient`` with a logged-in
viewer:

* the experiment page: its default first page (newest 50 runs), the same page filtered and
  sorted by a metric (``metrics.m0 > 0.5 and params.p0 = v1``, ``-metrics.m0``, with param
  and metric columns), and the last page of the unfiltered table;
* the run page with the 100,000-point metric, and the chart fragment the page loads for it
  (the history downsampled on the server), and both together: what a browser needs before
  the chart is drawn.

Each answer is checked before it is timed: the filtered page's first row is the true best
run (computed with numpy from the seeded data), and the chart carries at most
``MAX_POINTS`` points including the series' true maximum. Time is measured inside the ASGI
app (from the request's arrival to the end of the response body: routing, session, the
store, rendering), after a warm-up call, as the median of ``--repeat`` requests.
"""

from __future__ import annotations

import gc
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from bench.data import QUERY_METRIC, QUERY_PARAM, QUERY_THRESHOLD, QUERY_VALUE, SyntheticRuns
from bench.populate import populate_keel
from bench.report import Measure, Report
from bench.servers import form_login

UI_RUNS = 10_000
LONG_POINTS = 100_000
TARGET_MS = 300.0
PROJECT = "bench"
USER, PASSWORD = "bench-viewer", "bench-password"


class TimedApp:
    """An ASGI wrapper that keeps how long the app took on the last request (server time)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.last = time.perf_counter() - start


def run(root: Path, seed: int, report: Report, console: Console, times: int = 5) -> None:
    """Populate a store, check the pages' answers, time them, add the measures."""
    from fastapi.testclient import TestClient

    import keel
    from keel.entities import Metric
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings
    from keel.server.ui.charts import points_in
    from keel.server.ui.downsample import MAX_POINTS

    store = root / "keel-ui"
    data = SyntheticRuns(UI_RUNS, seed)
    client = keel.Client(store=str(store), project=PROJECT)
    details: dict[str, Any] = {"runs": UI_RUNS, "points": LONG_POINTS, "timed_requests": times}
    report.details["ui"] = details
    try:
        console.print(
            f"[bold]ui[/bold]: loading {UI_RUNS:,} runs and a {LONG_POINTS:,}-point metric…"
        )
        exp = client.create_exp("ui")
        start = time.perf_counter()
        populate_keel(client, exp.id, data, lambda _n: None)
        details["populate_runs_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        with exp.start_run(name="long-metric") as long_run:
            values = np.sin(np.arange(LONG_POINTS) / 700.0) + np.linspace(0, 1, LONG_POINTS)
            now = int(time.time() * 1000)
            client.log_batch(
                long_run,
                metrics=[
                    Metric("wave", float(v), i, now + i) for i, v in enumerate(values.tolist())
                ],
            )
        details["populate_metric_seconds"] = time.perf_counter() - start
        true_max = float(values.max())
    finally:
        client.close()

    app = create_app(ServerSettings(store=str(store), project=PROJECT))
    app.state.accounts.add_user(USER, PASSWORD, "viewer")
    timed = TimedApp(app)
    top = data.expected_top()
    expected_best = top[0][0] if top else None
    base = f"/projects/{PROJECT}"  # UI pages carry their project
    exp_url = f"{base}/experiments/{exp.id}"
    filtered = {
        "q": f'metrics.{QUERY_METRIC} > {QUERY_THRESHOLD} and params.{QUERY_PARAM} = "{QUERY_VALUE}"',
        "sort": f"-metrics.{QUERY_METRIC}",
        "cols": "params.p0, params.p1, params.p2, metrics.m0, metrics.m1, metrics.m2",
    }
    last_page = -(-(UI_RUNS + 1) // 50)

    with TestClient(timed) as tc:
        form_login(tc, USER, PASSWORD)
        checks: list[tuple[str, bool]] = []

        def rows(html: str) -> list[str]:
            return re.findall(
                r'<td><a href="/projects/[^/"]+/runs/[0-9a-f]{32}">([^<]+)</a></td>', html
            )

        def experiment_default() -> Any:
            return tc.get(exp_url)

        def experiment_filtered() -> Any:
            return tc.get(exp_url, params=filtered)

        def experiment_last() -> Any:
            return tc.get(exp_url, params={"page": last_page})

        def run_page() -> Any:
            return tc.get(f"{base}/runs/{long_run.id}")

        def chart() -> Any:
            return tc.get(f"{base}/runs/{long_run.id}/chart", params={"key": "wave"})

        page = experiment_default()
        checks.append(
            (
                "experiment page lists 50 runs",
                page.status_code == 200 and len(rows(page.text)) == 50,
            )
        )
        page = experiment_filtered()
        found = rows(page.text)
        checks.append(
            (
                f"filtered page starts with the true best run {expected_best}",
                page.status_code == 200 and bool(found) and found[0] == expected_best,
            )
        )
        page = experiment_last()
        checks.append(("last page has the oldest run", "run-0000000" in rows(page.text)))
        page = run_page()
        checks.append(
            ("run page loads the chart", page.status_code == 200 and "chart?key=wave" in page.text)
        )
        page = chart()
        figure = json.loads(
            re.search(r'<script type="application/json">(.*?)</script>', page.text, re.S).group(1)
        )
        shown = points_in(figure)
        checks.append(
            (
                f"chart has at most {MAX_POINTS} points and the true maximum",
                shown <= MAX_POINTS and max(figure["data"][0]["y"]) == true_max,
            )
        )
        details["chart_points"] = shown
        details["chart_bytes"] = len(page.content)
        details["checks"] = {name: ok for name, ok in checks}
        for name, ok in checks:
            if not ok:
                report.problems.append(f"ui: {name}: no")
        ok = all(good for _, good in checks)

        console.print("  timing the pages…")
        samples = {
            "experiment": _server_times(timed, experiment_default, times),
            "filtered": _server_times(timed, experiment_filtered, times),
            "last": _server_times(timed, experiment_last, times),
            "run": _server_times(timed, run_page, times),
            "chart": _server_times(timed, chart, times),
        }
    details["server_seconds"] = samples
    median = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    both = (
        statistics.median([a + b for a, b in zip(samples["run"], samples["chart"], strict=True)])
        * 1000
    )
    note = f"server time inside the ASGI app, median of {times} requests after 1 warm-up"
    add = report.add
    add(
        Measure(
            f"ui: experiment page, {UI_RUNS:,} runs (newest 50)",
            "ms",
            median["experiment"],
            None,
            TARGET_MS,
            ok,
            note,
            peer="none",
        )
    )
    add(
        Measure(
            "ui: experiment page, filtered + sorted by a metric",
            "ms",
            median["filtered"],
            None,
            TARGET_MS,
            ok,
            "m0 > 0.5 and p0 = v1, sort -m0, 3 param + 3 metric columns",
            peer="none",
        )
    )
    add(
        Measure(
            f"ui: experiment page, last page (offset {(last_page - 1) * 50:,})",
            "ms",
            median["last"],
            None,
            TARGET_MS,
            ok,
            "",
            peer="none",
        )
    )
    add(
        Measure(
            f"ui: run page with a {LONG_POINTS:,}-point metric",
            "ms",
            median["run"],
            None,
            TARGET_MS,
            ok,
            "the page; its charts load by htmx",
            peer="none",
        )
    )
    add(
        Measure(
            f"ui: its chart ({LONG_POINTS:,} → {shown} points)",
            "ms",
            median["chart"],
            None,
            TARGET_MS,
            ok,
            "history read + min/max downsampling + JSON",
            peer="none",
        )
    )
    add(
        Measure(
            "ui: run page + chart together",
            "ms",
            both,
            None,
            TARGET_MS,
            ok,
            "what a browser waits for before the chart is drawn",
            peer="none",
        )
    )
    console.print(
        "  "
        + ", ".join(f"{k} {v:,.0f} ms" for k, v in median.items())
        + f", run page + chart {both:,.0f} ms"
    )


def _server_times(timed: TimedApp, call: Any, times: int) -> list[float]:
    """Server time of ``times`` calls after one warm-up; garbage collected before each."""
    call()
    found = []
    for _ in range(times):
        gc.collect()
        answer = call()
        if answer.status_code != 200:
            raise RuntimeError(f"the page answered {answer.status_code}")
        found.append(timed.last)
    return found
