"""Tracking servers under a team's load: MLflow's k6 benchmark of its Go backend, rebuilt.

MLflow measured ``mlflow server`` against ``mlflow-go-backend`` with k6 (20 virtual users
for 30 s, PostgreSQL; ``benchmarks/`` of ``mlflow/mlflow-go-backend``): ``log_batch`` of 10
metrics and ``search_runs`` of an experiment of 23,525 runs with ``max_results`` 1000
(Python ~341 batches/s and ~1,004 ms per search, Go ~1,094/s and ~104 ms, on their machine).
The same shape here, on one PostgreSQL 15 cluster from the system binaries (``tests/pg.py``:
``fsync``, ``full_page_writes`` and ``synchronous_commit`` off), one database per server:

* **mlflow**: ``mlflow server`` 3.17.2 (keel's venv), ``--workers 1``;
* **mlflow-go**: ``mlflow-go server`` of ``mlflow-go-backend`` 0.2.2 with MLflow 3.17.2 in a venv
  of its own (``.venv-mlflow-go``, built on first use from
  ``bench/mlflow-go-requirements.txt``), its Python fallback server ``--workers 1``. Two
  workarounds make it run (see :func:`go_library_folder` and :func:`_go_ready`);
* **keel** (MLflow's REST API) and **keel-v1** (keel's ``/api/v1``): one ``keel server``
  (one process) on its own database, called with an editor's API token.

The servers and PostgreSQL are pinned to the first CPU, the load generator
(:mod:`bench.tracking_loadgen`, 20 keep-alive connections on asyncio streams, one process)
to the last, when there are at least 2; PostgreSQL thus shares the server's core. Each
system's search experiment holds 23,500 runs (:mod:`bench.tracking_populate`: bulk ``COPY``
of the query benchmark's synthetic runs, 20 params and 10 metrics each, then ``ANALYZE``);
20 more runs in another experiment receive the batches, one run per client.

Per round, systems in alternating order, each scenario warms up for 1 s, then runs closed
loop for ``seconds``: **batch** (``log_batch`` of 10 metrics to the client's run) and
**search** (the newest 1,000 runs of the 23,500). Reported: each system's median round of
throughput, p50 and p99, and the server's and PostgreSQL's CPU per request. Correct means:
no error answer; every client's run holds exactly one ``metric_0`` point per batch that was
answered OK; every search answer is the same size and its first one names the newest 1,000
runs in order. Targets: keel ≥ 3× MLflow's Python server and ≥ 1× the Go backend in both
scenarios, on both of keel's APIs. Throughputs are shown as time per request
(1 / throughput) so that lower is better in every row.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import Measure, Report
from bench.servers import MLFLOW_SERVER_ENV, api_token, keel_server, mlflow_server
from bench.serving_bench import REPO, Server, Variant, free_port, sigterm_as_interrupt
from bench.venvs import peer_python

CLIENTS = 20
SEARCH_RUNS = 23_500
WARMUP_SECONDS = 1.0
SCENARIOS = ("batch", "search")
SYSTEMS = ("mlflow", "mlflow-go", "keel", "keel-v1")
PEERS = {"mlflow": 3.0, "mlflow-go": 1.0}  # peer → how many times faster keel must be
#: MLflow's connection pool as large as keel's (keel.store.engine.PG_POOL_SIZE/OVERFLOW): with
#: SQLAlchemy's default 5 + 10, 20 clients of log_batch exhausted it and requests failed after
#: its 30 s timeout ("QueuePool limit of size 5 overflow 10 reached")
POOL_ENV = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "20", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "20"}
GO_REQUIREMENTS = REPO / "bench" / "mlflow-go-requirements.txt"
GO_VENV = REPO / ".venv-mlflow-go"
GO_LIBRARY = "libmlflow-go-backend"
#: the foreign key mlflow-go-backend 0.2.2 breaks on every log_batch (see _go_ready)
GO_BROKEN_FK = ("logged_model_metrics", "fk_logged_model_metrics_model_id")


class Unavailable(RuntimeError):
    """A system cannot be measured here; the message says why."""


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_module() -> Any:
    """``tests/pg.py``: the throwaway PostgreSQL the test suite uses."""
    spec = importlib.util.spec_from_file_location("keel_bench_pg", REPO / "tests" / "pg.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _postgres_pids(server: Any) -> list[int]:
    """The postmaster and every process it started (its backends)."""
    main = int((server.datadir / "postmaster.pid").read_text().split()[0])
    pids = [main]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == main:
            pids.append(int(stat.parent.name))
    return pids


def _pin_postgres(server: Any, cpus: set[int] | None) -> None:
    """Pin PostgreSQL to the servers' CPUs; backends forked later inherit it."""
    if cpus is None:
        return
    for pid in _postgres_pids(server):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


def _postgres_cpu(server: Any) -> float:
    """User + system CPU seconds of the cluster: its live processes, and the backends that
    ended (the postmaster reaps them, so they are in its children's time): a server that
    opens a connection per request would otherwise hide its database's work."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    pids = _postgres_pids(server)
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command name: utime is the 12th field, stime 13th, cutime 14th, cstime 15th
        total += int(fields[11]) + int(fields[12])
        if pid == pids[0]:
            total += int(fields[13]) + int(fields[14])
    return total / ticks


def _create_database(server: Any, name: str) -> tuple[str, str]:
    """(plain ``postgresql://`` URL, libpq conninfo) of a new database."""
    import psycopg

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = f"postgresql://postgres@127.0.0.1:{server.port}/{name}"
    return url, server.conninfo(name)


# --- the servers ------------------------------------------------------------------------------


def go_venv(console: Console) -> Path:
    """The python of mlflow-go-backend's venv, built first if missing or out of date."""
    return peer_python(
        GO_VENV, GO_REQUIREMENTS, what="MLflow's Go backend", console=console, error=Unavailable
    )


def go_library_folder(python: Path, folder: Path) -> Path:
    """A folder where ``MLFLOW_GO_LIBRARY_PATH`` finds the Go library under its Linux name.

    The manylinux wheel of mlflow-go-backend 0.2.2 ships its Linux ELF library named
    ``libmlflow-go-backend.dylib`` while it looks for ``.so`` on Linux; without this it tries to
    build the library with ``go`` (not installed) and exits.
    """
    found = subprocess.run(
        [str(python), "-c", "import mlflow_go_backend, os; print(os.path.dirname("
         "mlflow_go_backend.__file__))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        raise Unavailable(f"mlflow_go_backend does not import: {found.stderr.strip()[-300:]}")
    package = Path(found.stdout.strip())
    target = folder / "go-lib"
    target.mkdir(exist_ok=True)
    for suffix in (".so", ".h"):
        source = package / (GO_LIBRARY + (".h" if suffix == ".h" else ".so"))
        if not source.exists():
            source = package / (GO_LIBRARY + (".h" if suffix == ".h" else ".dylib"))
        if not source.exists():
            raise Unavailable(f"mlflow-go-backend's library is not in {package}")
        link = target / (GO_LIBRARY + suffix)
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    return target


def _mlflow(folder: Path, url: str, port: int) -> Variant:
    return mlflow_server(folder, port, url, options=("--workers", "1"), env=POOL_ENV)


def _mlflow_go(folder: Path, url: str, port: int, python: Path) -> Variant:
    venv_bin = python.parent
    fallback = free_port()
    # the Python server it forwards the endpoints Go lacks to; its options are split on ","
    python_command = (
        f"{venv_bin / 'mlflow'} server --backend-store-uri {url} --workers 1 "
        f"--artifacts-destination {folder / 'go-artifacts'} --host 127.0.0.1 --port {fallback}"
    )
    go_opts = f"log_level=warn,python_address=127.0.0.1:{fallback},python_command={python_command}"
    return Variant(
        name="mlflow-go",
        command=[
            str(venv_bin / "mlflow-go"),
            "server",
            "--backend-store-uri",
            url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--go-opts",
            go_opts,
        ],
        ready_path="/health",
        paths=[],
        body={},
        cwd=folder,
        env={
            **MLFLOW_SERVER_ENV,
            **POOL_ENV,
            "MLFLOW_GO_LIBRARY_PATH": str(go_library_folder(python, folder)),
            "VIRTUAL_ENV": str(venv_bin.parent),
        },
    )


def _keel(folder: Path, url: str, port: int) -> tuple[Variant, str]:
    """``keel server`` on a migrated database with an editor; returns its API token."""
    from keel.store.engine import dispose_engines, get_engine, upgrade

    keel_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    upgrade(get_engine(keel_url))
    token = api_token(keel_url, "bench", "bench-password-for-load", "editor", "bench")
    dispose_engines()
    options = ("--artifacts", str(folder / "keel-artifacts"))
    return keel_server(folder, port, keel_url, options=options), token


def _go_ready(conninfo: str) -> None:
    """Drop the foreign key mlflow-go-backend 0.2.2 violates on every ``log_batch``.

    Its log_batch also writes each metric to ``logged_model_metrics`` with ``model_id`` ''
    (and experiment 0), which MLflow 3's schema refuses (``fk_logged_model_metrics_model_id``):
    every batch answers 500. Without the constraint the rows are written and the batch
    succeeds, so its cost is measured as the Go code stands.
    """
    import psycopg

    table, constraint = GO_BROKEN_FK
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{constraint}"')  # type: ignore[arg-type]


# --- HTTP set-up ------------------------------------------------------------------------------


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One JSON request; its decoded answer (raises RuntimeError on a non-2xx answer)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from None
    return json.loads(text) if text else None


def _mlflow_experiment(base: str, name: str, token: str | None) -> str:
    api = "/api/2.0/mlflow"
    return call(base, "POST", f"{api}/experiments/create", {"name": name}, token)["experiment_id"]


def _mlflow_runs(base: str, experiment: str, count: int, token: str | None) -> list[str]:
    api, now = "/api/2.0/mlflow", int(time.time() * 1000)
    body = {"experiment_id": experiment, "start_time": now, "tags": [{"key": "mlflow.user", "value": "k6"}]}  # fmt: skip
    return [
        call(base, "POST", f"{api}/runs/create", body, token)["run"]["info"]["run_id"]
        for _ in range(count)
    ]


def _history_counts(base: str, api: str, runs: list[str], token: str | None) -> dict[str, int]:
    """How many ``metric_0`` points each run holds."""
    counts = {}
    for run in runs:
        if api == "keel":
            found = call(base, "GET", f"/api/v1/runs/{run}/metrics/metric_0", token=token)
            counts[run] = len(found)
        else:
            path = f"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=metric_0"
            counts[run] = len(call(base, "GET", path, token=token).get("metrics", []))
    return counts


# --- measuring --------------------------------------------------------------------------------


class System:
    """One measured system: where it listens, how it is called, what it was given."""

    def __init__(self, name: str, server: Server, api: str, token: str | None) -> None:
        self.name, self.server, self.api, self.token = name, server, api, token
        self.search_experiment = ""
        self.runs: list[str] = []
        self.ok_per_run: dict[str, int] = {}
        self.rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in SCENARIOS}

    @property
    def base(self) -> str:
        return self.server.url("")


def _loadgen(
    system: System, scenario: str, seconds: float, cpus: set[int] | None, clients: int = CLIENTS
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "bench.tracking_loadgen", "--scenario", scenario,
        "--api", system.api, "--base", system.base, "--clients", str(clients),
        "--seconds", str(seconds),
    ]  # fmt: skip
    if scenario == "batch":
        command += ["--runs", ",".join(system.runs)]
    else:
        command += ["--experiment", system.search_experiment]
    if system.token:
        command += ["--token", system.token]
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-500:]}")
    found = json.loads(done.stdout)
    for run, n in found.pop("ok_per_run").items():
        system.ok_per_run[run] = system.ok_per_run.get(run, 0) + n
    return found


def measure(
    system: System, scenario: str, seconds: float, cpus: set[int] | None, pg: Any
) -> dict[str, Any]:
    """Warm up, then one closed-loop measurement with the server's and database's CPU."""
    # a search warms up with 2 clients: 20 would each wait for the slowest server's answer
    # (MLflow's takes seconds of CPU), for minutes
    _loadgen(system, scenario, WARMUP_SECONDS, cpus, CLIENTS if scenario == "batch" else 2)
    cpu0, db0 = system.server.cpu_seconds(), _postgres_cpu(pg)
    found = _loadgen(system, scenario, seconds, cpus)
    cpu1, db1 = system.server.cpu_seconds(), _postgres_cpu(pg)
    ok = max(found["ok"], 1)
    if cpu0 is not None and cpu1 is not None:
        found["server_cpu_ms"] = (cpu1 - cpu0) * 1000 / ok
    found["db_cpu_ms"] = (db1 - db0) * 1000 / ok
    return found


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


def run(
    root: Path,
    report: Report,
    console: Console,
    rounds: int = 3,
    seconds: float = 20.0,
    systems: tuple[str, ...] = SYSTEMS,
    search_runs: int = SEARCH_RUNS,
) -> None:
    """Start PostgreSQL and the servers, populate, measure ``rounds`` rounds, stop them all."""
    with sigterm_as_interrupt():
        _run(root, report, console, rounds, seconds, systems, search_runs)


def _start(
    name: str, folder: Path, pg: Any, cpus: set[int] | None, console: Console
) -> tuple[Server, str | None]:
    url, conninfo = _create_database(pg, name.replace("-", "_"))
    port = free_port()
    token = None
    if name == "mlflow":
        variant = _mlflow(folder, url, port)
    elif name == "mlflow-go":
        variant = _mlflow_go(folder, url, port, go_venv(console))
    else:
        variant, token = _keel(folder, url, port)
    server = Server(variant, port, folder / f"{name}.log", cpus)
    try:
        server.wait_ready()
        if name == "mlflow-go":
            _go_ready(conninfo)
    except BaseException:
        server.stop()
        raise
    server.conninfo = conninfo  # type: ignore[attr-defined]
    return server, token


def _run(
    root: Path,
    report: Report,
    console: Console,
    rounds: int,
    seconds: float,
    wanted: tuple[str, ...],
    search_runs: int,
) -> None:
    from bench.data import DEFAULT_SEED, SyntheticRuns
    from bench.tracking_populate import newest_names, populate_keel, populate_mlflow

    folder = root / "tracking-load"
    folder.mkdir(parents=True)
    server_cpus, client_cpus = _cpus()
    data = SyntheticRuns(search_runs, DEFAULT_SEED)
    expected = newest_names(data, 1000)
    pg = _pg_module().PostgresServer().start()
    servers: dict[str, Server] = {}
    measured: dict[str, System] = {}
    problems: dict[str, str] = {}
    try:
        _pin_postgres(pg, server_cpus)
        console.print(
            f"[bold]tracking-load[/bold]: PostgreSQL on port {pg.port}; servers and PostgreSQL "
            f"on CPUs {sorted(server_cpus or [])}, load generator on {sorted(client_cpus or [])}"
        )
        names = [n for n in ("mlflow", "mlflow-go", "keel") if any(w.startswith(n) for w in wanted)]
        for name in names:
            try:
                server, token = _start(name, folder, pg, server_cpus, console)
            except (Unavailable, RuntimeError, OSError) as exc:
                problems[name] = str(exc)
                console.print(f"[red]tracking-load: {name} cannot run: {exc}[/red]")
                continue
            servers[name] = server
            _pin_postgres(pg, server_cpus)  # the new server's connections
            base = server.url("")
            search = _mlflow_experiment(base, "search-23500", token)
            populate = populate_keel if name == "keel" else populate_mlflow
            loaded = populate(server.conninfo, search, data)  # type: ignore[attr-defined]
            report.populate[f"tracking-load {name}"] = {**loaded, "db_bytes": 0}
            console.print(
                f"[dim]{name}: {loaded['rows']:,} rows of {search_runs:,} runs in "
                f"{loaded['seconds']:.1f} s[/dim]"
            )
            apis = (
                [("keel", "mlflow"), ("keel-v1", "keel")] if name == "keel" else [(name, "mlflow")]
            )
            for system_name, api in apis:
                if system_name not in wanted:
                    continue
                system = System(system_name, server, api, token)
                system.search_experiment = search
                batch = _mlflow_experiment(base, f"batch-{system_name}", token)
                system.runs = _mlflow_runs(base, batch, CLIENTS, token)
                measured[system_name] = system
        for number in range(rounds):
            order = list(measured.values())
            if number % 2:
                order.reverse()
            for system in order:
                for scenario in SCENARIOS:
                    try:
                        found = measure(system, scenario, seconds, client_cpus, pg)
                    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                        found = {"error": str(exc), "errors": 1, "rate": 0.0}
                    system.rounds[scenario].append(found)
                    _say(console, number, system.name, scenario, found)
        for system in measured.values():
            stored = _history_counts(system.base, system.api, system.runs, system.token)
            system.stored = stored  # type: ignore[attr-defined]
    finally:
        for server in servers.values():
            server.stop()
        pg.stop()
    _report(measured, problems, expected, report, console, rounds, seconds, server_cpus)


def _say(console: Console, number: int, name: str, scenario: str, found: dict[str, Any]) -> None:
    if "error" in found:
        console.print(f"[red]round {number + 1} {name} {scenario}: {found['error']}[/red]")
        return
    console.print(
        f"[dim]round {number + 1} {name} {scenario}: {found['rate']:,.1f}/s, p50 "
        f"{found['p50_ms'] or 0:.1f} ms, p99 {found['p99_ms'] or 0:.1f} ms, errors "
        f"{found['errors']}, server CPU {found.get('server_cpu_ms') or 0:.2f} ms/req, "
        f"PostgreSQL CPU {found['db_cpu_ms']:.2f} ms/req, client CPU "
        f"{found['client_cpu_percent'] or 0:.0f}%[/dim]"
        + (f" [red]{found['first_error']}[/red]" if found.get("first_error") else "")
    )


# --- reporting --------------------------------------------------------------------------------


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    good = [r for r in rounds if "error" not in r]
    if not good:
        return None
    return sorted(good, key=lambda r: r["rate"])[(len(good) - 1) // 2]


def correctness(system: System, expected: list[str]) -> list[str]:
    """What a system got wrong (empty when nothing)."""
    wrong = []
    for scenario, rounds in system.rounds.items():
        errors = sum(r.get("errors", 0) for r in rounds)
        if errors:
            first = next(
                (r.get("first_error") or r.get("error") for r in rounds if r.get("errors")), ""
            )
            wrong.append(f"{scenario}: {errors} error(s), first: {first}")
    stored = getattr(system, "stored", None)
    if stored is not None and stored != {r: system.ok_per_run.get(r, 0) for r in system.runs}:
        wrong.append("batch: stored metric_0 points differ from the batches answered OK")
    for r in system.rounds["search"]:
        if "error" in r:
            continue
        if r.get("first_names") != expected:
            wrong.append("search: the first answer is not the newest 1,000 runs in order")
            break
        if r.get("bytes_min") != r.get("bytes_max"):
            wrong.append("search: answers of different sizes")
            break
    return wrong


def _report(
    measured: dict[str, System],
    problems: dict[str, str],
    expected: list[str],
    report: Report,
    console: Console,
    rounds: int,
    seconds: float,
    server_cpus: set[int] | None,
) -> None:
    medians = {
        (name, scenario): _median_round(system.rounds[scenario])
        for name, system in measured.items()
        for scenario in SCENARIOS
    }
    wrong = {name: correctness(system, expected) for name, system in measured.items()}
    table = Table(
        title=f"Tracking load: {CLIENTS} clients, PostgreSQL, median of {rounds} × {seconds:g} s",
        caption="batch: log_batch of 10 metrics; search: search_runs, 1,000 of 23,500 runs",
    )
    for column in ("system", "scenario", "per s", "p50 ms", "p99 ms", "errors", "server CPU ms",
                   "PostgreSQL CPU ms"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("system", "scenario") else "right")
    for (name, scenario), m in medians.items():
        if m is None:
            table.add_row(name, scenario, "-", "-", "-", "failed", "-", "-")
            continue
        errors = sum(r.get("errors", 0) for r in measured[name].rounds[scenario])
        table.add_row(
            name, scenario, f"{m['rate']:,.1f}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}",
            str(errors), f"{m.get('server_cpu_ms') or 0:.2f}", f"{m['db_cpu_ms']:.2f}",
        )  # fmt: skip
    for name, why in problems.items():
        table.add_row(name, "-", "-", "-", "-", f"not run: {why[:60]}", "-", "-")
    console.print(table)

    what = {
        "batch": "log_batch of 10 metrics",
        "search": "search_runs, 1,000 of 23,500 runs",
    }
    for scenario in SCENARIOS:
        for keel_name, label in (("keel", "MLflow API"), ("keel-v1", "/api/v1")):
            keel = medians.get((keel_name, scenario))
            for peer, times in PEERS.items():
                other = medians.get((peer, scenario))
                if keel_name not in measured and peer not in measured:
                    continue
                keel_ms = 1000 / keel["rate"] if keel and keel["rate"] else None
                peer_ms = 1000 / other["rate"] if other and other["rate"] else None
                peer_label = "MLflow (Python)" if peer == "mlflow" else "MLflow Go backend"
                note = (
                    f"keel server ({label}) vs {peer_label}, {CLIENTS} clients, closed loop; "
                    "ms per request = 1 / throughput"
                )
                if keel:
                    note += f"; keel p50 {keel['p50_ms']:.1f} / p99 {keel['p99_ms']:.1f} ms"
                if other:
                    note += f", peer p50 {other['p50_ms']:.1f} / p99 {other['p99_ms']:.1f} ms"
                if peer in problems:
                    note += f"; peer not run: {problems[peer]}"
                report.add(
                    Measure(
                        f"{CLIENTS} clients, {what[scenario]}: keel {label} vs {peer}",
                        "ms/req",
                        keel_ms,
                        peer_ms,
                        target=peer_ms / times if peer_ms else None,
                        correct=not wrong.get(keel_name) and not wrong.get(peer),
                        note=note + f"; target ≥ {times:g}× the peer's throughput",
                        peer=peer_label,
                    )
                )
    for name, found in wrong.items():
        for line in found:
            report.problems.append(f"tracking-load {name}: {line}")
    for name, why in problems.items():
        report.notes.append(f"tracking-load: {name} not measured: {why}")
    report.notes.append(
        "tracking-load: servers and PostgreSQL share CPU "
        f"{sorted(server_cpus or [])}; the load generator has its own; median of {rounds} "
        f"alternating rounds of {seconds:g} s per system and scenario"
    )
    report.details["tracking_load"] = {
        name: {
            "rounds": system.rounds,
            "ok_per_run": system.ok_per_run,
            "stored": getattr(system, "stored", None),
            "wrong": wrong[name],
        }
        for name, system in measured.items()
    } | {"not_run": problems, "median": {f"{k[0]}/{k[1]}": v for k, v in medians.items()}}
