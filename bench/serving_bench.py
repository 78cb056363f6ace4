"""Serving: keel serve vs BentoML, MLflow's model server and a bare Starlette route.

The model is scikit-learn's ``LogisticRegression(max_iter=500)`` fitted on the four feature
columns of ``examples/iris/data/iris_train.csv`` (→ species). It is served these ways, each
with the same number of server workers (``--workers``, default 1) and one-row requests:

* **bare**: :mod:`bench.serving_bare`, one Starlette ``POST /invocations`` route that makes a
  one-row DataFrame and calls ``predict`` (the least a Python server can do per request);
* **bentoml**: :mod:`bench.serving_bentoml` under ``bentoml serve`` (BentoML 1.4, the
  adaptive-batching anchor), a ``batchable`` API fed ``{"rows": [row]}`` whose dispatcher
  merges concurrent requests into one ``predict`` (``max_batch_size`` 64, as keel's). It runs
  from a venv of its own, ``.venv-bentoml``, built on first use from
  ``bench/bentoml-requirements.txt`` (``BENCH_BENTOML_VENV`` overrides where);
* **mlflow**: ``mlflow.sklearn.save_model`` then ``mlflow models serve --env-manager local``,
  fed ``{"dataframe_records": [row]}``;
* **keel**: a temporary project trained with ``keel train`` and served with ``keel serve``,
  four times with a different ``api:`` section: batching on (recording off), batching off
  (``keel-nobatch``), batching off without a time limit (``keel-inline``: ``timeout_s: null``,
  ``model_threads: 0``, so predict runs on the event loop as in the bare route), and recording
  on (batching on, ``keel-recording``).

Load comes from another process, :mod:`bench.loadgen` (asyncio raw streams, keep-alive
HTTP/1.1), on 127.0.0.1. With at least ``workers + 1`` CPUs, the servers (every process they
start) are pinned to all but the last CPU and the load generator to the last one, so they do
not compete for a core. For each system: start the server, wait until it is ready, warm up
for 2 s, then

1. peak: closed loop, 16 connections sending back-to-back for ``--seconds`` → requests/s,
   p50 and p99 latency, and the server's CPU time per request (user + system of its
   processes, from /proc: the hypervisor's steal is not in it);
2. latency: open loop at half of that system's own peak rate for ``--seconds``, latency counted
   from each request's scheduled send time (no coordinated omission) → p99;

and stop the server (SIGTERM to its process group, SIGKILL after 10 s). Targets: keel
(batching) ≥ 1.5× BentoML's throughput and a lower p99 than BentoML's at half of each one's
peak; keel ≥ 3× MLflow's throughput; keel without batching ≥ 0.9× bare; keel's p99 ≤ 10 ms
at half its peak; recording costs ≤ 10% more server CPU per request (shown round by round,
so the noise is visible). Throughput targets are shown as time per request (1 /
throughput), so that "lower is better" holds for every line of the report; their ratio
column is keel's throughput over the peer's. A server that does not start or answers with
errors is a problem (exit status 1); a missed target is not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import Measure, Report
from bench.venvs import peer_python

REPO = Path(__file__).resolve().parent.parent
IRIS = REPO / "examples" / "iris" / "data"
BIN = Path(sys.executable).parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
EXPECTED = "setosa"  # what every system must answer for ROW
PEAK_CONNECTIONS = 16
WARMUP_SECONDS = 2.0
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 10.0
BENTOML_REQUIREMENTS = REPO / "bench" / "bentoml-requirements.txt"
#: where BentoML's venv is (``BENCH_BENTOML_VENV`` overrides)
DEFAULT_BENTOML_VENV = REPO / ".venv-bentoml"

MODEL = """
import pandas as pd
from sklearn.linear_model import LogisticRegression

import keel

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class BenchModel(keel.Model):
    def train(self, ctx):
        df = ctx.sources["train"].get_dataframe()
        return LogisticRegression(max_iter=500).fit(df[FEATURES], df["species"])

    def evaluate(self, ctx, fitted):
        df = ctx.sources["test"].get_dataframe()
        return {"accuracy": float((fitted.predict(df[FEATURES]) == df["species"]).mean())}

    def predict(self, ctx, fitted, inputs):
        return str(fitted.predict(pd.DataFrame([inputs])[FEATURES])[0])

    def predict_batch(self, ctx, fitted, batch):
        return [str(p) for p in fitted.predict(pd.DataFrame(batch)[FEATURES])]
"""


@dataclass
class Variant:
    """One served system: how to start it, where it is ready, what to send."""

    name: str
    command: list[str]
    ready_path: str
    paths: list[str]  # request paths to try, the first that answers right is measured
    body: dict[str, Any]
    cwd: Path = REPO
    ready_status: int = 200
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None


@dataclass
class Outcome:
    name: str
    workers: int
    peak: dict[str, Any] | None = None
    half: dict[str, Any] | None = None
    error: str | None = None
    cpu_us: float | None = None  # median server CPU time per request over the rounds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpus(workers: int) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs), or (None, None) when there are too few to split."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < workers + 1:
        return None, None
    return set(cpus[:-1]), {cpus[-1]}


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Server:
    """A server process in its own process group, stopped with everything it started."""

    def __init__(self, variant: Variant, port: int, log: Path, cpus: set[int] | None) -> None:
        self.variant, self.port, self.log = variant, port, log
        env = {**os.environ, **variant.env}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            variant.command,
            cwd=variant.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_pinned(cpus),
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def processes(self) -> dict[int, tuple[int, int]]:
        """``{pid: (utime, stime)}`` in clock ticks of every live process of the server:
        its process group and every descendant (BentoML starts its worker in a new session,
        outside the group). Empty where ``/proc`` is not there."""
        table: dict[int, tuple[int, int, int, int]] = {}  # pid: (ppid, pgrp, utime, stime)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                # after the command name: state ppid pgrp ... utime (12th) stime (13th)
                table[int(stat.parent.name)] = (
                    int(fields[1]),
                    int(fields[2]),
                    int(fields[11]),
                    int(fields[12]),
                )
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
        mine = {pid for pid, row in table.items() if row[1] == self.proc.pid}
        mine.add(self.proc.pid)
        grown = True
        while grown:
            more = {pid for pid, row in table.items() if row[0] in mine and pid not in mine}
            mine |= more
            grown = bool(more)
        return {pid: table[pid][2:] for pid in mine if pid in table}

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of every live process of the server (Linux).

        Unlike wall-clock throughput, this does not count the time the machine's hypervisor
        gave the CPU to someone else (steal), so it compares two servers fairly on a shared
        host. None where ``/proc`` is not there.
        """
        if not (Path("/proc") / str(self.proc.pid) / "stat").exists():
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(u + s for u, s in self.processes().values()) / ticks

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with status {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url(self.variant.ready_path), timeout=2) as r:
                    if r.status == self.variant.ready_status:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == self.variant.ready_status:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s: {self.tail()}")

    def tail(self, lines: int = 6) -> str:
        self._log.flush()
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def stop(self) -> None:
        family = set(self.processes()) - {self.proc.pid}  # before the parent goes
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind by their parent
        for pid in family:  # those in sessions of their own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def loadgen(
    url: str, body: dict[str, Any], seconds: float, cpus: set[int] | None, rate: float | None = None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--body",
        json.dumps(body),
        "--connections",
        str(PEAK_CONNECTIONS),
        "--seconds",
        str(seconds),
        "--json",
    ]
    if rate is not None:
        command += ["--rate", f"{rate:.1f}"]
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=_pinned(cpus),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


# --- the three systems ------------------------------------------------------------------


def _fit() -> Any:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    df = pd.read_csv(IRIS / "iris_train.csv")
    return LogisticRegression(max_iter=500).fit(df[FEATURES], df["species"])


def _bare(folder: Path, fitted: Any, port: int, workers: int) -> Variant:
    path = _model_file(folder, fitted)
    return Variant(
        name="bare",
        command=[
            *(sys.executable, "-m", "uvicorn", "bench.serving_bare:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--log-level", "warning"),
        ],
        ready_path="/invocations",
        ready_status=405,  # GET of the POST-only route, once the app is up
        paths=["/invocations"],
        body=ROW,
        env={"BENCH_MODEL_PATH": str(path)},
    )


def bentoml_venv() -> Path:
    return Path(os.environ.get("BENCH_BENTOML_VENV") or DEFAULT_BENTOML_VENV)


def bentoml_python(console: Console | None = None, create: bool = True) -> Path:
    """The python of BentoML's venv, built first if it is missing or out of date (RuntimeError
    when it is missing and ``create`` is False, or the build fails)."""
    return peer_python(
        bentoml_venv(),
        BENTOML_REQUIREMENTS,
        what="BentoML",
        console=console,
        create=create,
        hint="run python -m bench --only serving, which builds it",
    )


def _model_file(folder: Path, fitted: Any) -> Path:
    """The fitted model as a cloudpickle file (what bare and BentoML load)."""
    import cloudpickle

    path = folder / "bare-model.pkl"
    with path.open("wb") as handle:
        cloudpickle.dump(fitted, handle)
    return path


def _bentoml(console: Console | None) -> Callable[..., Variant]:
    def make(folder: Path, fitted: Any, port: int, workers: int) -> Variant:
        python = bentoml_python(console)  # built on first use, before the server starts
        return Variant(
            name="bentoml",
            command=[
                str(python.parent / "bentoml"),
                *("serve", "bench.serving_bentoml:BenchService"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            ready_path="/readyz",
            paths=["/species"],
            body={"rows": [ROW]},
            env={
                "BENCH_MODEL_PATH": str(_model_file(folder, fitted)),
                "BENCH_WORKERS": str(workers),  # the service's decorator reads it
                "BENTOML_HOME": str(folder / "bentoml-home"),
                "BENTOML_DO_NOT_TRACK": "True",
            },
        )

    return make


def _mlflow(folder: Path, fitted: Any, port: int, workers: int) -> Variant:
    import mlflow.sklearn
    import sklearn

    path = folder / "mlflow-model"
    shutil.rmtree(path, ignore_errors=True)  # saved again each round
    mlflow.sklearn.save_model(
        fitted, str(path), pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
    )
    return Variant(
        name="mlflow",
        command=[
            str(BIN / "mlflow"),
            *("models", "serve", "-m", str(path), "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", str(port), "-w", str(workers)),
        ],
        ready_path="/ping",
        paths=["/invocations"],
        body={"dataframe_records": [ROW]},
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )


def _keel_config(project: Path, batching: bool, recording: bool, time_limit: bool = True) -> str:
    return (
        "project: bench\n"
        'model: {name: bench, version: "1.0.0", module: bench_model}\n'
        f"store: {project / 'store'}\n"
        "datasources:\n"
        f"  train: {{type: csv, path: {IRIS / 'iris_train.csv'}, tags: [train]}}\n"
        f"  test: {{type: csv, path: {IRIS / 'iris_test.csv'}, tags: [test]}}\n"
        "api:\n"
        "  name: bench\n"
        f"  record_invokes: {'true' if recording else 'false'}\n"
        # without a time limit (and one call at a time) model code runs on the event loop
        + ("" if time_limit else "  timeout_s: null\n  model_threads: 0\n")
        + f"  batching: {{enabled: {'true' if batching else 'false'}, max_batch_size: 64, "
        "max_wait_ms: 1}\n"
        "  resources:\n"
        "    - name: species\n"
        "      kind: query\n"
        "      inputs:\n"
        + "".join(f"        {name}: {{type: number, required: true}}\n" for name in FEATURES)
    )


def keel_serve_available() -> str | None:
    """None when ``keel serve`` can be run, else why not."""
    if not (REPO / "src" / "keel" / "serving" / "app.py").exists():
        return "src/keel/serving/app.py does not exist yet"
    done = subprocess.run(
        [str(BIN / "keel"), "serve", "--help"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return f"keel serve --help failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def _keel_train(project: Path) -> None:
    project.mkdir(parents=True)
    (project / "bench_model.py").write_text(MODEL)
    (project / "keel.yml").write_text(_keel_config(project, batching=True, recording=False))
    done = subprocess.run(
        [str(BIN / "keel"), "-c", str(project / "keel.yml"), "train"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"keel train failed: {(done.stderr or done.stdout).strip()[-500:]}")


def _keel(
    project: Path, name: str, batching: bool, recording: bool, time_limit: bool = True
) -> Callable[..., Variant]:
    def make(folder: Path, fitted: Any, port: int, workers: int) -> Variant:
        config = project / "keel.yml"
        return Variant(
            name=name,
            command=[
                str(BIN / "keel"),
                *("-c", str(config), "serve", "bench", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(workers)),
            ],
            ready_path="/ready",
            paths=["/invocations", "/bench/v1/species"],
            body=ROW,
            cwd=project,
            prepare=lambda: config.write_text(
                _keel_config(project, batching, recording, time_limit)
            ),
        )

    return make


# --- measuring ----------------------------------------------------------------------------


def measure(
    variant: Variant, port: int, workers: int, seconds: float, folder: Path, console: Console
) -> Outcome:
    outcome = Outcome(variant.name, workers)
    server_cpus, client_cpus = _cpus(workers)
    if variant.prepare is not None:
        variant.prepare()
    server = Server(variant, port, folder / f"{variant.name}.log", server_cpus)
    try:
        started = time.perf_counter()
        server.wait_ready()
        console.print(
            f"[dim]serving, {variant.name}: ready in {time.perf_counter() - started:.1f} s "
            f"on port {port}[/dim]"
        )
        url, answers = None, []
        for path in variant.paths:
            status, text = post(server.url(path), variant.body)
            answers.append(f"POST {path} → {status} {text[:200]}")
            if 200 <= status < 300 and EXPECTED in text:
                url = server.url(path)
                break
        if url is None:
            raise RuntimeError("no right answer: " + "; ".join(answers))
        loadgen(url, variant.body, WARMUP_SECONDS, client_cpus)
        cpu_before = server.cpu_seconds()
        outcome.peak = loadgen(url, variant.body, seconds, client_cpus)
        cpu_after = server.cpu_seconds()
        if cpu_before is not None and cpu_after is not None and outcome.peak["ok"]:
            outcome.peak["server_cpu_us"] = (cpu_after - cpu_before) / outcome.peak["ok"] * 1e6
        rate = outcome.peak["rps"] / 2
        if rate > 0:
            outcome.half = loadgen(url, variant.body, seconds, client_cpus, rate=rate)
        for result in (outcome.peak, outcome.half):
            if result and result["errors"]:
                outcome.error = (
                    f"{result['errors']} errors of {result['requests']} requests "
                    f"({result['mode']} loop): {result['first_error']}"
                )
        peak, half = outcome.peak, outcome.half or {}
        cpu_note = (
            f", server CPU {peak['server_cpu_us']:.0f} µs/req" if "server_cpu_us" in peak else ""
        )
        console.print(
            f"[dim]serving, {variant.name}: {peak['rps']:,.0f} req/s{cpu_note}, "
            f"p50 {peak['p50_ms']:.2f} ms, "
            f"p99 {peak['p99_ms']:.2f} ms; at {rate:,.0f} req/s p99 "
            f"{half.get('p99_ms') or float('nan'):.2f} ms (generator timer lag p99 "
            f"{half.get('client_lag_p99_ms') or 0:.2f} ms); load generator CPU "
            f"{peak['client_cpu_percent']:.0f}%[/dim]"
        )
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as exc:
        outcome.error = str(exc)
    finally:
        server.stop()
    return outcome


def run(
    root: Path,
    report: Report,
    console: Console,
    workers: int,
    seconds: float,
    rounds: int = 3,
    systems: str | None = None,
) -> None:
    """Measure every system; SIGTERM, like Ctrl-C, stops the servers before leaving."""
    with sigterm_as_interrupt():
        _run(root, report, console, workers, seconds, rounds, systems)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside, so ``finally`` blocks stop the servers
    started there (a benchmark killed by a CI timeout leaves none behind)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(
    root: Path,
    report: Report,
    console: Console,
    workers: int,
    seconds: float,
    rounds: int,
    systems: str | None,
) -> None:
    folder = root / "serving"
    folder.mkdir(parents=True)
    fitted = _fit()
    makers: list[tuple[str, Callable[..., Variant]]] = [
        ("bare", _bare),
        ("bentoml", _bentoml(console)),
        ("mlflow", _mlflow),
    ]
    outcomes: list[Outcome] = []
    why_not = keel_serve_available()
    if why_not is None:
        project = folder / "keel-project"
        try:
            _keel_train(project)
            makers += [
                ("keel", _keel(project, "keel", batching=True, recording=False)),
                ("keel-nobatch", _keel(project, "keel-nobatch", batching=False, recording=False)),
                (
                    "keel-inline",
                    _keel(
                        project, "keel-inline", batching=False, recording=False, time_limit=False
                    ),
                ),
                ("keel-recording", _keel(project, "keel-recording", batching=True, recording=True)),
            ]
        except RuntimeError as exc:
            outcomes.append(Outcome("keel", workers, error=str(exc)))
    else:
        outcomes.append(Outcome("keel", workers, error=f"keel serve is not available: {why_not}"))
    server_cpus, client_cpus = _cpus(workers)
    report.notes.append(
        f"serving: {workers} worker(s); servers on CPUs {sorted(server_cpus)}, load generator on "
        f"CPU {sorted(client_cpus)}"
        if server_cpus and client_cpus
        else f"serving: {workers} worker(s); too few CPUs to pin servers and load generator apart"
    )
    # Rounds alternate the order of the systems; each system's median round is reported,
    # so one stall of this shared machine does not decide a row.
    if systems:
        wanted = {name.strip() for name in systems.split(",")}
        makers = [(name, make) for name, make in makers if name in wanted]
    measured: dict[str, list[Outcome]] = {}
    for round_number in range(rounds):
        order = makers if round_number % 2 == 0 else list(reversed(makers))
        for name, make in order:
            port = free_port()
            try:
                variant = make(folder, fitted, port, workers)
            except Exception as exc:  # a failed setup is reported, the others still run
                measured.setdefault(name, []).append(
                    Outcome(name, workers, error=f"setup failed: {exc!r}")
                )
                continue
            measured.setdefault(name, []).append(
                measure(variant, port, workers, seconds, folder, console)
            )
    outcomes += [_median(runs) for name, runs in measured.items()]
    report.notes.append(
        f"serving: median of {rounds} round(s) per system (peak by req/s, half-peak by p99), "
        "systems in alternating order"
    )
    _report(outcomes, report, console, seconds)
    _recording_rounds(measured, report, console)


def recording_rounds(measured: dict[str, list[Outcome]]) -> list[dict[str, Any]]:
    """Per round, the server CPU µs per request of keel with recording off and on, and the
    cost in % (None where a round has no figure)."""
    off, on = measured.get("keel", []), measured.get("keel-recording", [])
    rows = []
    for number, (a, b) in enumerate(zip(off, on, strict=False), start=1):
        cpu_off = a.peak.get("server_cpu_us") if a.peak else None
        cpu_on = b.peak.get("server_cpu_us") if b.peak else None
        cost = 100 * (cpu_on / cpu_off - 1) if cpu_off and cpu_on else None
        rows.append({"round": number, "off_us": cpu_off, "on_us": cpu_on, "cost_percent": cost})
    return rows


def _recording_rounds(measured: dict[str, list[Outcome]], report: Report, console: Console) -> None:
    rows = recording_rounds(measured)
    if not rows:
        return
    report.details.setdefault("serving", {})["recording_rounds"] = rows
    table = Table(
        title="Recording cost, round by round: server CPU µs per request at peak",
        caption="keel with batching, api.record_invokes off and on; cost = on / off - 1",
    )
    for column in ("round", "off", "on", "cost"):
        table.add_column(column, justify="right", no_wrap=True)

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for row in rows:
        table.add_row(
            str(row["round"]),
            cell(row["off_us"], ",.0f"),
            cell(row["on_us"], ",.0f"),
            cell(row["cost_percent"], "+.1f") + ("%" if row["cost_percent"] is not None else ""),
        )
    costs = sorted(r["cost_percent"] for r in rows if r["cost_percent"] is not None)
    if costs:
        table.add_row("median", "", "", f"{costs[len(costs) // 2]:+.1f}%")
    console.print(table)


def _median(runs: list[Outcome]) -> Outcome:
    """One outcome from several rounds: the median peak (by req/s) and half-peak (by p99)."""
    errors = [o.error for o in runs if o.error]
    peaks = sorted((o.peak for o in runs if o.peak), key=lambda r: r["rps"])
    halves = sorted(
        (o.half for o in runs if o.half and o.half.get("p99_ms") is not None),
        key=lambda r: r["p99_ms"],
    )
    cpus = sorted(o.peak["server_cpu_us"] for o in runs if o.peak and "server_cpu_us" in o.peak)
    return Outcome(
        runs[0].name,
        runs[0].workers,
        peak=peaks[len(peaks) // 2] if peaks else None,
        half=halves[len(halves) // 2] if halves else None,
        error=errors[0] if errors else None,
        cpu_us=cpus[len(cpus) // 2] if cpus else None,
    )


def _report(outcomes: list[Outcome], report: Report, console: Console, seconds: float) -> None:
    by_name = {o.name: o for o in outcomes if o.peak}
    report.details["serving"] = {
        o.name: {
            "workers": o.workers,
            "peak": o.peak,
            "half_peak": o.half,
            "server_cpu_us_per_request": o.cpu_us,
            "error": o.error,
        }
        for o in outcomes
    }
    for o in outcomes:
        if o.error:
            report.problems.append(f"serving, {o.name}: {o.error}")

    def rps(name: str) -> float | None:
        o = by_name.get(name)
        return o.peak["rps"] if o and o.peak and o.peak["rps"] > 0 else None

    cpu = max((o.peak["client_cpu_percent"] for o in outcomes if o.peak), default=0.0)
    table = Table(
        title=f"Serving: {seconds:g} s closed loop, {PEAK_CONNECTIONS} connections; then open "
        "loop at half of each system's peak",
        caption="CPU µs: server CPU time per request at peak (steal excluded); "
        "latencies in ms; ½pk p99: p99 in the open loop at half the system's own peak; "
        f"×bentoml, ×mlflow, ×bare: throughput / the peer's; load generator CPU ≤ {cpu:.0f}% "
        "of a core",
    )
    peers = ("bentoml", "mlflow", "bare")
    columns = ("system", "workers", "req/s", "CPU µs", "p50", "p99", "½pk p99")
    columns += tuple(f"×{peer}" for peer in peers)
    for column in columns:
        table.add_column(column, justify="left" if column == "system" else "right", no_wrap=True)
    for o in outcomes:
        if not o.peak:
            table.add_row(o.name, str(o.workers), "[red]failed[/red]", *["-"] * 7)
            continue
        mine = o.peak["rps"]
        half = o.half or {}
        table.add_row(
            o.name,
            str(o.workers),
            f"{mine:,.0f}",
            f"{o.cpu_us:,.0f}" if o.cpu_us is not None else "-",
            f"{o.peak['p50_ms']:.1f}",
            f"{o.peak['p99_ms']:.1f}",
            f"{half['p99_ms']:.1f}" if half.get("p99_ms") is not None else "-",
            *(
                f"{mine / peer:.2f}x" if peer and o.name.startswith("keel") else "-"
                for peer in map(rps, peers)
            ),
        )
    console.print(table)

    keel, mlflow, bare, recording = rps("keel"), rps("mlflow"), rps("bare"), rps("keel-recording")
    bentoml, nobatch, inline = rps("bentoml"), rps("keel-nobatch"), rps("keel-inline")

    def half_p99(name: str) -> float | None:
        o = by_name.get(name)
        return o.half["p99_ms"] if o and o.half and o.half.get("p99_ms") is not None else None

    def us(value: float | None) -> float | None:
        return None if value is None else 1e6 / value

    unit = "µs/req"
    note = "time per request at peak = 1 / throughput; ratio = keel's throughput / the peer's"
    report.add(
        Measure(
            name="serving throughput vs BentoML (≥ 1.5x)",
            unit=unit,
            keel=us(keel),
            mlflow=us(bentoml),
            target=None if bentoml is None else us(bentoml) / 1.5,
            note=note + "; both micro-batching (keel's batcher, BentoML's adaptive batching)",
            peer="bentoml serve",
        )
    )
    report.add(
        Measure(
            name="serving p99 at half peak vs BentoML (lower)",
            unit="ms",
            keel=half_p99("keel"),
            mlflow=half_p99("bentoml"),
            target=half_p99("bentoml"),
            note="open loop at half of each system's own peak rate, latency from the scheduled "
            "send time",
            peer="bentoml serve",
        )
    )
    report.add(
        Measure(
            name="serving throughput vs MLflow (≥ 3x)",
            unit=unit,
            keel=us(keel),
            mlflow=us(mlflow),
            target=None if mlflow is None else us(mlflow) / 3,
            note=note,
            peer="mlflow models serve",
        )
    )
    report.add(
        Measure(
            name="serving throughput without batching vs bare (≥ 0.9x)",
            unit=unit,
            keel=us(nobatch),
            mlflow=us(bare),
            target=None if bare is None else us(bare) / 0.9,
            note=note + "; keel with api.batching off: one predict per request, as bare",
            peer="bare Starlette",
        )
    )
    report.add(
        Measure(
            name="serving throughput without batching or time limit vs bare (shown, no target)",
            unit=unit,
            keel=us(inline),
            mlflow=us(bare),
            note=note + "; keel with api.batching off, timeout_s null and model_threads 0: "
            "predict on the event loop, as bare (no 504 for a hung call)",
            peer="bare Starlette",
        )
    )
    half = by_name["keel"].half if "keel" in by_name else None
    bare_half = by_name["bare"].half if "bare" in by_name else None
    report.add(
        Measure(
            name="serving p99 at half peak (≤ 10 ms)",
            unit="ms",
            keel=half["p99_ms"] if half else None,
            mlflow=bare_half["p99_ms"] if bare_half else None,
            target=10.0,
            note="open loop at half of each system's own peak rate, latency from the scheduled "
            "send time",
            peer="bare Starlette",
        )
    )
    report.add(
        Measure(
            name="serving with recording on, wall clock (shown, no target)",
            unit=unit,
            keel=us(recording),
            mlflow=us(keel),
            note="req/s swings with the hypervisor's steal between runs: the target is on the "
            "CPU measure below",
            peer="keel, recording off",
        )
    )
    cpu_keel = by_name["keel"].cpu_us if "keel" in by_name else None
    cpu_recording = by_name["keel-recording"].cpu_us if "keel-recording" in by_name else None
    report.add(
        Measure(
            name="recording cost in server CPU per request (≤ 10%)",
            unit=unit,
            keel=cpu_recording,
            mlflow=cpu_keel,
            target=None if cpu_keel is None else cpu_keel / 0.9,
            note="user + system CPU time of the server processes during the peak run, per "
            "answered request: what bounds a CPU-bound worker's throughput, without the "
            "hypervisor's steal that makes wall-clock req/s swing between runs",
            peer="keel, recording off",
        )
    )
