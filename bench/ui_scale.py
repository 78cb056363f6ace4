"""The web UI at a team's scale, beside ``mlflow ui``: ``python -m bench --only ui-scale``.

The data is FastTrackML's test shape, thinned where a page's cost does not depend on it
(see :mod:`bench.ui_scale_data`): 50 experiments of 1,500 runs, one of them ("wide") with
1,500 metric keys on every run, plus a run with a 1,000,000-point metric. The same rows go
into keel's store and into an MLflow 3 SQLite database.

Three ways of timing, each the median of ``times`` requests after one warm-up:

1. **server time in process**: keel's platform app behind :class:`bench.ui_bench.TimedApp`
   (from the request's arrival to the end of its body), for every UI page and its JSON twin
   (the ``/api/v1`` call that answers the same question). Target: 300 ms each.
2. **over HTTP**: a real ``keel server`` and ``mlflow server`` (3.17.2, what ``mlflow ui``
   runs) on loopback, one after the other, each page's request(s) from a keep-alive client:
   keel's pages and JSON twins, MLflow's REST calls its UI makes for the same page.
3. **in Chromium**: Playwright drives the system Chromium (cache warm, logged in) to each
   page; time to usable is from navigation start to the moment a predicate written per page
   holds (the runs table has its rows, the chart is drawn…), read from ``performance.now()``
   in the page. Target: 1 s. MLflow's runs and run pages get the same treatment.

Every answer is checked before it is timed (the right rows in the right order, the chart's
points), and a wrong one marks its measure incorrect.
"""

from __future__ import annotations

import gc
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.report import Measure, Report
from bench.servers import api_token, form_login, keel_server, mlflow_server
from bench.ui_bench import PASSWORD, USER
from bench.ui_scale_data import (
    LONG_KEY,
    Populated,
    Shape,
    long_values,
    metric_key,
    param_key,
    populate_keel,
    populate_mlflow,
    wide_truth,
)

PROJECT = "bench"
SERVER_MS = 300.0
USABLE_MS = 1000.0
PAGE_RUNS = 50  # keel's default page; MLflow's UI asks for 100 at first (see _mlflow_calls)
SORT_KEY_INDEX = 742  # a metric deep in the 1,500: its column is not among the first shown
BROWSER_TIMES = 5
HEAVY_TIMES = 2
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Page:
    """One UI page and its JSON twin, with what each answer must hold."""

    name: str
    html: str  # URL path + query of the page
    json: str | None  # URL of its JSON twin, or None
    check_html: Callable[[str], bool]
    check_json: Callable[[Any], bool] | None = None
    usable: str | None = None  # JS predicate body: the page is usable when it is true
    note: str = ""
    heavy: bool = False  # seconds per request: timed HEAVY_TIMES times, not ``times``


@dataclass
class Timings:
    """Medians (ms) per page name."""

    server: dict[str, float] = field(default_factory=dict)
    server_json: dict[str, float] = field(default_factory=dict)
    http: dict[str, float] = field(default_factory=dict)
    http_json: dict[str, float] = field(default_factory=dict)
    browser: dict[str, float] = field(default_factory=dict)
    mlflow_http: dict[str, float] = field(default_factory=dict)
    mlflow_browser: dict[str, float] = field(default_factory=dict)
    correct: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # pages never usable in Chromium


# --- the pages ------------------------------------------------------------------------------


def _rows(html: str) -> list[str]:
    """Run names of a runs table, in order."""
    return re.findall(r'<td><a href="[^"]*/runs/[0-9a-f]{32}">([^<]+)</a></td>', html)


def keel_pages(shape: Shape, keel: Populated) -> list[Page]:
    """The pages a team's day goes through, on keel, with their checks."""
    from urllib.parse import quote, urlencode

    base = f"/projects/{PROJECT}"
    wide = keel.wide_id
    key = metric_key(min(SORT_KEY_INDEX, shape.keys - 1))
    truth = wide_truth(shape, key, skip_first_param="v9")
    threshold = 0.5
    filtered = [name for name, value in truth if value > threshold]
    q = f'metrics.{key} > {threshold} and params.{param_key(0)} != "v9"'
    cols = f"params.{param_key(0)}, metrics.{key}, metrics.{metric_key(0)}"
    page_q = urlencode({"q": q, "sort": f"-metrics.{key}", "cols": cols})
    api_query = quote(
        json.dumps(
            {
                "$and": [
                    {"experiment_id": wide},
                    {f"metrics.{key}": {"$gt": threshold}},
                    {f"params.{param_key(0)}": {"$ne": "v9"}},
                ]
            }
        )
    )
    api_runs = f"/api/v1/runs?project={PROJECT}&limit={PAGE_RUNS}"
    exp_query = quote(json.dumps({"experiment_id": wide}))
    newest = quote(json.dumps([["created_at", -1]]))
    by_key = quote(json.dumps([[f"metrics.{key}", -1]]))
    compared = keel.wide_run_ids[:10]

    def filtered_ok(html: str) -> bool:
        names = _rows(html)
        values = dict(truth)
        return (
            len(names) == min(PAGE_RUNS, len(filtered))
            and all(values[n] > threshold for n in names)
            and [values[n] for n in names] == sorted((values[n] for n in names), reverse=True)
            and names == filtered[: len(names)]
        )

    def filtered_json_ok(found: Any) -> bool:
        values = [r["metrics"][key] for r in found]
        return (
            len(found) == min(PAGE_RUNS, len(filtered))
            and values == sorted(values, reverse=True)
            and all(v > threshold for v in values)
        )

    searched = [f"metrics.{k}" for k in shape.metric_keys if "074" in k]
    long = long_values(shape)
    true_max = float(long.max())
    table = "document.querySelectorAll('table.runs tbody tr').length"
    return [
        Page(
            "project (experiments list)",
            f"{base}",
            f"/api/v1/experiments?project={PROJECT}&limit=200",
            lambda h: h.count("/experiments/") >= shape.experiments,
            lambda j: len(j) == shape.experiments,
            usable="document.querySelectorAll('a[href*=\"/experiments/\"]').length >= "
            + str(shape.experiments),
        ),
        Page(
            "runs table, newest 50",
            f"{base}/experiments/{wide}",
            f"{api_runs}&query={exp_query}&sort={newest}",
            lambda h: len(_rows(h)) == PAGE_RUNS and _rows(h)[0] == "long-metric",
            lambda j: len(j) == PAGE_RUNS,
            usable=f"{table} >= {PAGE_RUNS}",
        ),
        Page(
            f"runs table, filtered + sorted by {key}",
            f"{base}/experiments/{wide}?{page_q}",
            f"{api_runs}&query={api_query}&sort={by_key}",
            filtered_ok,
            filtered_json_ok,
            usable=f"{table} >= {PAGE_RUNS}",
            note=f"q: {q}",
        ),
        Page(
            "column picker, search '074'",
            f"{base}/experiments/{wide}/columns?search=074&cols={quote(cols)}",
            f"{base}/experiments/{wide}/columns?search=074&format=json",
            lambda h: (
                h.count("data-column=") == min(60, len(searched))
                and all(f'data-column="{c}"' in h for c in searched[:60])
            ),
            lambda j: j["columns"] == searched,
            usable=None,
            note=f"keys holding '074' among {shape.keys:,} metric keys and {shape.params} params",
        ),
        Page(
            "run page, 1,500 metrics",
            f"{base}/runs/{keel.wide_run_ids[0]}",
            f"/api/v1/runs/{keel.wide_run_ids[0]}",
            lambda h: metric_key(shape.keys - 1) in h,
            lambda j: len(j["metrics"]) == shape.keys,
            usable=f"document.readyState !== 'loading' && "
            f"document.body.textContent.includes('{metric_key(shape.keys - 1)}')",
            note="usable: the page with its metrics table (1,500 rows) parsed",
        ),
        Page(
            f"chart of {shape.long_points:,} points, first view",
            f"{base}/runs/{keel.long_run_id}/chart?key={LONG_KEY}",
            f"{base}/runs/{keel.long_run_id}/chart?key={LONG_KEY}&format=json",
            lambda h: "data-chart" in h and f"{shape.long_points:,} points" in h,
            lambda j: (
                j["points"] == shape.long_points
                and 0 < j["shown"] <= 1000
                and max(j["figure"]["data"][0]["y"]) == true_max
            ),
            note="drawn from the metric buckets kept as points are logged (~15,600 rows), "
            "reduced to 1,000 points; the in-memory cache emptied before each",
        ),
        Page(
            f"chart of {shape.long_points:,} points, again",
            f"{base}/runs/{keel.long_run_id}/chart?key={LONG_KEY}",
            f"{base}/runs/{keel.long_run_id}/chart?key={LONG_KEY}&format=json",
            lambda h: "data-chart" in h and f"{shape.long_points:,} points" in h,
            lambda j: j["points"] == shape.long_points,
            note="the same request again: buckets are read each time (the in-memory cache "
            "serves only long histories the buckets cannot draw)",
        ),
        Page(
            f"run page of the {shape.long_points:,}-point run",
            f"{base}/runs/{keel.long_run_id}",
            f"/api/v1/runs/{keel.long_run_id}",
            lambda h: "chart?key=wave" in h,
            lambda j: j["metrics"][LONG_KEY] == float(long[-1]),
            usable="document.querySelector('[data-chart][data-drawn]') !== null",
            note="usable: the run page with its chart drawn (first view)",
        ),
        Page(
            f"whole history, {shape.long_points:,} points (API)",
            "",
            f"/api/v1/runs/{keel.long_run_id}/metrics/{LONG_KEY}",
            lambda h: True,
            lambda j: len(j) == shape.long_points,
            note="every point as JSON: no page needs it (median of 2 after a warm-up)",
            heavy=True,
        ),
        Page(
            "compare 10 runs",
            f"{base}/compare?" + "&".join(f"runs={r}" for r in compared),
            f"{api_runs}&query={quote(json.dumps({'id': {'$in': compared}}))}",
            lambda h: all(r[:7] in h for r in compared),
            lambda j: len(j) == len(compared),
            usable=f"document.readyState !== 'loading' && "
            f"document.body.textContent.includes('{metric_key(shape.keys - 1)}')",
            note="usable: params and 1,500 metrics side by side parsed (charts load below)",
        ),
        Page(
            "models list",
            f"{base}/models",
            f"/api/v1/models?project={PROJECT}",
            lambda h: "<h1" in h,
            lambda j: isinstance(j, list),
            usable="document.querySelector('main h1') !== null",
            note="no models in this data: the page's fixed cost",
        ),
    ]


def mlflow_calls(shape: Shape, ml: Populated) -> dict[str, list[tuple[str, str, Any]]]:
    """The REST calls MLflow's UI (3.17) makes for the same pages: (method, path, body)."""
    api = "/ajax-api/2.0/mlflow"
    key = metric_key(min(SORT_KEY_INDEX, shape.keys - 1))
    search = {
        "experiment_ids": [ml.wide_id],
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 100,
    }
    return {
        "project (experiments list)": [("POST", f"{api}/experiments/search", {"max_results": 100})],
        "runs table, newest 50": [
            ("POST", f"{api}/runs/search", {**search, "order_by": ["attributes.start_time DESC"]})
        ],
        f"runs table, filtered + sorted by {key}": [
            (
                "POST",
                f"{api}/runs/search",
                {
                    **search,
                    "filter": f"metrics.`{key}` > 0.5 and params.`{param_key(0)}` != 'v9'",
                    "order_by": [f"metrics.`{key}` DESC"],
                },
            )
        ],
        "run page, 1,500 metrics": [("GET", f"{api}/runs/get?run_id={ml.wide_run_ids[0]}", None)],
        f"chart of {shape.long_points:,} points, first view": [
            (
                "GET",
                f"{api}/metrics/get-history-bulk-interval?run_ids={ml.long_run_id}"
                f"&metric_key={LONG_KEY}&max_results=320",
                None,
            )
        ],
        f"run page of the {shape.long_points:,}-point run": [
            ("GET", f"{api}/runs/get?run_id={ml.long_run_id}", None)
        ],
        f"whole history, {shape.long_points:,} points (API)": [
            (
                "GET",
                f"{api}/metrics/get-history?run_id={ml.long_run_id}&metric_key={LONG_KEY}",
                None,
            )
        ],
        "compare 10 runs": [
            ("GET", f"{api}/runs/get?run_id={r}", None) for r in ml.wide_run_ids[:10]
        ],
        "models list": [("GET", f"{api}/registered-models/search?max_results=100", None)],
    }


# --- timing ---------------------------------------------------------------------------------


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_in_process(
    store: Path, pages: list[Page], times: int, timings: Timings, console: Console
) -> None:
    """Check each page and its JSON twin, then time them in the ASGI app."""
    from fastapi.testclient import TestClient

    from bench.ui_bench import TimedApp
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings
    from keel.server.ui import series

    app = create_app(ServerSettings(store=str(store), project=PROJECT))
    app.state.accounts.add_user(USER, PASSWORD, "viewer")
    timed = TimedApp(app)
    with TestClient(timed) as tc:
        form_login(tc, USER, PASSWORD)
        for page in pages:
            cold = "first view" in page.name
            for kind, url in (("html", page.html), ("json", page.json)):
                if not url:
                    continue

                def call(url: str = url, cold: bool = cold) -> Any:
                    if cold:
                        series._reduced.clear()
                    return tc.get(url)

                answer = call()
                ok = answer.status_code == 200 and (
                    page.check_html(answer.text)
                    if kind == "html"
                    else page.check_json is not None and page.check_json(answer.json())
                )
                timings.correct[f"{page.name} {kind}"] = ok
                samples = []
                for _ in range(HEAVY_TIMES if page.heavy else times):
                    gc.collect()
                    if call().status_code != 200:
                        raise RuntimeError(f"{url} stopped answering 200")
                    samples.append(timed.last)
                ms = _median_ms(samples)
                (timings.server if kind == "html" else timings.server_json)[page.name] = ms
                console.print(f"    {page.name} ({kind}): {ms:,.1f} ms{'' if ok else ' WRONG'}")


def _keel_server(folder: Path, store: Path) -> tuple[Any, str]:
    """A ``keel server`` on ``store`` (viewer ``USER`` exists); returns it and an API token."""
    from bench.serving_bench import Server, free_port

    token = api_token(str(store), USER, PASSWORD, "viewer", f"ui-scale-{time.time_ns()}")
    port = free_port()
    server = Server(keel_server(folder, port, str(store)), port, folder / "keel-server.log", None)
    server.wait_ready()
    return server, token


def _mlflow_server(folder: Path, db: Path) -> Any:
    from bench.serving_bench import Server, free_port

    port = free_port()
    variant = mlflow_server(folder, port, f"sqlite:///{db}")
    server = Server(variant, port, folder / "mlflow-server.log", None)
    server.wait_ready()
    return server


def _wall(call: Callable[[], Any], times: int) -> float:
    """Median wall time of ``times`` calls after a warm-up; a call that takes over a second
    is repeated ``HEAVY_TIMES`` times only (keeps the locked run under ten minutes)."""
    start = time.perf_counter()
    call()
    if time.perf_counter() - start > 1.0:
        times = min(times, HEAVY_TIMES)
    samples = []
    for _ in range(times):
        gc.collect()
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return _median_ms(samples)


def time_keel_http(base_url: str, token: str, pages: list[Page], times: int, t: Timings) -> None:
    import httpx2 as httpx

    with (
        httpx.Client(base_url=base_url, timeout=120) as html,
        httpx.Client(
            base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}
        ) as api,
    ):
        form_login(html, USER, PASSWORD)
        for page in pages:
            n = HEAVY_TIMES if page.heavy else times
            if "first view" in page.name:  # this server has never read it: one cold request
                start = time.perf_counter()
                _ok(html.get(page.html))
                t.http[page.name] = (time.perf_counter() - start) * 1000
            elif page.html:
                t.http[page.name] = _wall(lambda p=page: _ok(html.get(p.html)), n)
            if page.json:
                client = api if page.json.startswith("/api/") else html
                t.http_json[page.name] = _wall(lambda p=page, c=client: _ok(c.get(p.json)), n)


def time_mlflow_http(
    base_url: str, calls: dict[str, list[tuple[str, str, Any]]], times: int, t: Timings
) -> dict[str, Any]:
    """Median wall time of each page's MLflow calls (together); what they returned."""
    import httpx2 as httpx

    seen: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=300) as http:

        def send(method: str, path: str, body: Any) -> Any:
            if method == "POST":
                return _ok(http.post(path, json=body))
            return _ok(http.get(path))

        for name, page_calls in calls.items():
            try:
                answers = [send(*c) for c in page_calls]
                seen[name] = answers[0].json()
                n = HEAVY_TIMES if name.startswith("whole history") else times
                t.mlflow_http[name] = _wall(lambda pc=page_calls: [send(*c) for c in pc], n)
            except (httpx.HTTPError, RuntimeError) as exc:  # a timeout is a finding, not a crash
                seen[name] = {"error": str(exc)[:300]}
    return seen


def _ok(answer: Any) -> Any:
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.request.url} answered {answer.status_code}")
    return answer


# --- Chromium -------------------------------------------------------------------------------


def _usable(page: Any, url: str, predicate: str) -> float:
    """Navigate to ``url`` and wait until ``predicate`` (a JS expression) holds; ms from the
    navigation's start. The predicate is inlined into a function, not eval'd: the pages'
    Content-Security-Policy forbids eval."""
    page.goto(url, wait_until="commit")
    try:
        found = page.wait_for_function(
            f"() => (({predicate}) ? performance.now() : false)", timeout=60_000
        )
    except Exception as exc:  # Playwright's TimeoutError: say which page
        raise RuntimeError(f"{url} was not usable ({predicate}) within 60 s") from exc
    return float(found.json_value())


def _browser_login(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/|/$"))


def time_browser(
    base_url: str,
    pages: list[Page],
    times: int,
    t: Timings,
    mlflow: tuple[str, list[tuple[str, str, str]]] | None,
) -> None:
    """Time to usable in Chromium for keel's pages (logged in), then MLflow's."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            if pages:
                _browser_login(page, base_url)
            for item in pages:
                if item.usable is None or not item.html:
                    continue
                url = base_url + item.html
                try:
                    cold = _usable(page, url, item.usable)  # the first view: nothing cached
                    samples = [_usable(page, url, item.usable) for _ in range(times)]
                except RuntimeError as exc:
                    t.failures.append(str(exc))
                    continue
                t.browser[item.name] = statistics.median(samples)
                t.browser[item.name + " (first)"] = cold
            context.close()
            if mlflow is not None:
                ml_url, ml_pages = mlflow
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                for name, path, predicate in ml_pages:
                    url = ml_url + path
                    try:
                        cold = _usable(page, url, predicate)
                        samples = []
                        for _ in range(times if cold < 5_000 else HEAVY_TIMES + 1):
                            page.goto("about:blank")  # a hash route: leave, or nothing reloads
                            samples.append(_usable(page, url, predicate))
                    except RuntimeError as exc:
                        t.failures.append(f"mlflow: {exc}")
                        continue
                    t.mlflow_browser[name] = statistics.median(samples)
                    t.mlflow_browser[name + " (first)"] = cold
                context.close()
        finally:
            browser.close()


# --- the benchmark --------------------------------------------------------------------------


def run(
    root: Path, report: Report, console: Console, times: int = 10, shape: Shape | None = None
) -> None:
    """Populate both stores, check and time every page three ways, add the measures."""
    import keel

    shape = shape or Shape()
    details: dict[str, Any] = {"shape": shape.as_dict(), "times": times}
    report.details["ui_scale"] = details
    folder = root / "ui-scale"
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "keel"
    console.print(
        f"[bold]ui-scale[/bold]: loading {shape.experiments} experiments × {shape.runs:,} runs "
        f"(one with {shape.keys:,} metric keys per run) + a {shape.long_points:,}-point metric…"
    )
    with keel.Client(store=str(store), project=PROJECT) as client:
        ours = populate_keel(client, shape)
    theirs = populate_mlflow(folder / "mlflow.db", str(folder / "mlflow-artifacts"), shape)
    report.populate["ui-scale keel"] = ours.loaded.as_dict()
    report.populate["ui-scale mlflow"] = theirs.loaded.as_dict()
    console.print(
        f"  populated: keel {ours.loaded.rows:,} rows in {ours.loaded.seconds:.0f} s, "
        f"MLflow {theirs.loaded.rows:,} rows in {theirs.loaded.seconds:.0f} s"
    )
    pages = keel_pages(shape, ours)
    t = Timings()
    console.print("  server time in process…")
    time_in_process(store, pages, times, t, console)

    console.print("  over HTTP and in Chromium…")
    server, token = _keel_server(folder, store)
    try:
        time_keel_http(server.url(""), token, pages, times, t)
        time_browser(server.url(""), pages, BROWSER_TIMES, t, None)
    finally:
        server.stop()
    ml = _mlflow_server(folder, folder / "mlflow.db")
    try:
        seen = time_mlflow_http(ml.url(""), mlflow_calls(shape, theirs), times, t)
        details["mlflow_answers"] = {
            name: _describe_mlflow(answer) for name, answer in seen.items()
        }
        second = f"e00-run-{shape.runs - 1:04d}"
        ml_pages = [
            (
                "runs table, newest 50",
                f"/#/experiments/{theirs.wide_id}/runs?workflowType=machine_learning",
                f"document.body.innerText.includes('{second}')",
            ),
            (
                "run page, 1,500 metrics",
                f"/#/experiments/{theirs.wide_id}/runs/{theirs.wide_run_ids[0]}",
                f"document.body.innerText.includes('{metric_key(0)}')",
            ),
        ]
        time_browser("", [], BROWSER_TIMES, t, (ml.url(""), ml_pages))
    finally:
        ml.stop()
    details["timings"] = t.__dict__
    _report(shape, pages, t, report, console)


def _describe_mlflow(answer: Any) -> dict[str, Any]:
    """How much an MLflow answer held (runs, metrics of the first, history points)."""
    out: dict[str, Any] = {"error": answer["error"]} if "error" in answer else {}
    if "runs" in answer:
        out["runs"] = len(answer["runs"])
        first = answer["runs"][0] if answer["runs"] else {}
        out["metrics_of_first"] = len(first.get("data", {}).get("metrics", []))
    if "run" in answer:
        out["metrics"] = len(answer["run"].get("data", {}).get("metrics", []))
    if "metrics" in answer:
        out["points"] = len(answer["metrics"])
    if "experiments" in answer:
        out["experiments"] = len(answer["experiments"])
    return out


def _report(shape: Shape, pages: list[Page], t: Timings, report: Report, console: Console) -> None:
    add = report.add
    for page in pages:
        ok_html = t.correct.get(f"{page.name} html", True)
        ok_json = t.correct.get(f"{page.name} json", True)
        if not (ok_html and ok_json):
            report.problems.append(f"ui-scale: {page.name}: a wrong answer")
        if page.name in t.server:
            add(
                Measure(
                    f"ui-scale: {page.name} (page, server)",
                    "ms",
                    t.server[page.name],
                    None,
                    SERVER_MS,
                    ok_html,
                    page.note or "in process, median of the requests after one warm-up",
                    peer="none",
                )
            )
        if page.name in t.server_json:
            add(
                Measure(
                    f"ui-scale: {page.name} (JSON, server)",
                    "ms",
                    t.server_json[page.name],
                    None,
                    SERVER_MS,
                    ok_json,
                    page.json or "",
                    peer="none",
                )
            )
        if page.name in t.mlflow_http:
            keel_ms = t.http.get(page.name) or t.http_json.get(page.name)
            add(
                Measure(
                    f"ui-scale: {page.name} over HTTP",
                    "ms",
                    keel_ms,
                    t.mlflow_http[page.name],
                    None,
                    ok_html,
                    "loopback wall time of the page (keel) / of the REST calls its UI makes "
                    "(mlflow server)",
                )
            )
        if page.name in t.browser:
            add(
                Measure(
                    f"ui-scale: {page.name}, time to usable in Chromium",
                    "ms",
                    t.browser[page.name],
                    t.mlflow_browser.get(page.name),
                    USABLE_MS,
                    ok_html,
                    f"median of {BROWSER_TIMES} after the first "
                    f"({t.browser[page.name + ' (first)']:,.0f} ms"
                    + (
                        f"; MLflow's first {t.mlflow_browser[page.name + ' (first)']:,.0f} ms)"
                        if page.name + " (first)" in t.mlflow_browser
                        else ")"
                    ),
                )
            )
    report.problems.extend(f"ui-scale: {f}" for f in t.failures if not f.startswith("mlflow"))
    report.notes.extend(f"ui-scale: {f}" for f in t.failures if f.startswith("mlflow"))
    worst = max(t.server.items(), key=lambda kv: kv[1])
    console.print(f"  slowest page in process: {worst[0]} {worst[1]:,.0f} ms")
