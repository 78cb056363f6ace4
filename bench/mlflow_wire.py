"""MLflow's own client against ``mlflow server`` and against ``keel server``: metric logging.

Both servers run on this machine at the same time, on 127.0.0.1, each on a fresh SQLite
store: ``mlflow server`` (3.17.2, ``--backend-store-uri sqlite:///…``, its artifacts proxied,
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``) and ``keel server`` (an embedded store with one
editor and an API token, sent as ``MLFLOW_TRACKING_TOKEN``). The client is the unmodified
``mlflow.MlflowClient`` in this process. Per round and system, in alternating order:

1. one-by-one: a new run, 20 warm-up calls, then 1,000 ``log_metric`` calls (one HTTP request
   each), timed together;
2. batch: one ``log_batch`` of 1,000 metrics (one request), timed.

Each logged history is read back and compared with what was sent. Reported: the median round
of each system, the ratio, and each server's CPU time per call (user + system of its process
group from ``/proc``; unlike wall time it excludes the time this shared machine's hypervisor
gave the CPU to others). Target: keel at least 2× faster than MLflow's server on both.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.report import Measure, Report
from bench.servers import api_token, keel_server, mlflow_server
from bench.serving_bench import Server, Variant, free_port

CALLS = 1000
WARMUP = 20
TARGET_RATIO = 2.0
SYSTEMS = ("mlflow", "keel")


def _mlflow_server(folder: Path, port: int) -> Variant:
    return mlflow_server(folder, port, f"sqlite:///{folder / 'mlflow.db'}")


def _keel_server(folder: Path, port: int) -> tuple[Variant, str]:
    """``keel server`` on a new embedded store with an editor; returns its API token."""
    store = str(folder / "keel-store")
    token = api_token(store, "bench", "bench-password", "editor", "bench")
    return keel_server(folder, port, store), token


@contextlib.contextmanager
def _token(token: str | None) -> Iterator[None]:
    """MLflow's client reads ``MLFLOW_TRACKING_TOKEN`` on each request."""
    old = os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        if old is not None:
            os.environ["MLFLOW_TRACKING_TOKEN"] = old


def _round(client: Any, experiment_id: str, server: Server, values: list[float]) -> dict[str, Any]:
    from mlflow.entities import Metric

    run_id = client.create_run(experiment_id).info.run_id
    for i in range(WARMUP):
        client.log_metric(run_id, "warmup", 0.0, step=i)
    cpu0 = server.cpu_seconds()
    start = time.perf_counter()
    for i, value in enumerate(values):
        client.log_metric(run_id, "one", value, step=i)
    one_s = time.perf_counter() - start
    cpu1 = server.cpu_seconds()
    now = int(time.time() * 1000)
    batch = [Metric("batch", value, now, i) for i, value in enumerate(values)]
    start = time.perf_counter()
    client.log_batch(run_id, metrics=batch)
    batch_s = time.perf_counter() - start
    cpu2 = server.cpu_seconds()
    correct = all(
        [m.value for m in client.get_metric_history(run_id, key)] == values
        for key in ("one", "batch")
    )
    client.set_terminated(run_id)
    cpu = None not in (cpu0, cpu1, cpu2)
    return {
        "one_s": one_s,
        "batch_s": batch_s,
        "one_cpu_ms": (cpu1 - cpu0) * 1000 / len(values) if cpu else None,  # type: ignore[operator]
        "batch_cpu_ms": (cpu2 - cpu1) * 1000 if cpu else None,  # type: ignore[operator]
        "correct": correct,
    }


def run(root: Path, report: Report, console: Console, rounds: int = 3) -> None:
    """Start both servers, measure ``rounds`` alternating rounds, stop them."""
    import mlflow

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail, don't wait minutes
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    folder = root / "mlflow-wire"
    folder.mkdir(parents=True)
    values = [((i * 7919) % 1000) / 1000 for i in range(CALLS)]
    servers: dict[str, Server] = {}
    tokens: dict[str, str | None] = {"mlflow": None}
    try:
        console.print("[bold]mlflow-wire[/bold]: starting mlflow server and keel server…")
        port = free_port()
        servers["mlflow"] = Server(_mlflow_server(folder, port), port, folder / "mlflow.log", None)
        port = free_port()
        keel_variant, tokens["keel"] = _keel_server(folder, port)
        servers["keel"] = Server(keel_variant, port, folder / "keel.log", None)
        for server in servers.values():
            server.wait_ready()
        clients, experiments = {}, {}
        for name, server in servers.items():
            with _token(tokens[name]):
                clients[name] = mlflow.MlflowClient(tracking_uri=server.url(""))
                experiments[name] = clients[name].create_experiment("mlflow-wire")
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in SYSTEMS}
        for number in range(rounds):
            order = SYSTEMS if number % 2 == 0 else tuple(reversed(SYSTEMS))
            for name in order:
                with _token(tokens[name]):
                    found = _round(clients[name], experiments[name], servers[name], values)
                results[name].append(found)
                console.print(
                    f"[dim]round {number + 1} {name}: {CALLS:,} log_metric calls "
                    f"{found['one_s']:.2f} s, log_batch of {CALLS:,} "
                    f"{found['batch_s'] * 1000:.0f} ms"
                    + ("" if found["correct"] else " [red]WRONG HISTORY[/red]")
                    + "[/dim]"
                )
    except RuntimeError as exc:
        report.problems.append(f"mlflow-wire: a server did not start: {exc}")
        return
    finally:
        for server in servers.values():
            server.stop()
    _report(results, report, rounds)


def _median(results: list[dict[str, Any]], key: str) -> float | None:
    found = [r[key] for r in results if r[key] is not None]
    return statistics.median(found) if found else None


def _report(results: dict[str, list[dict[str, Any]]], report: Report, rounds: int) -> None:
    correct = all(r["correct"] for rs in results.values() for r in rs)
    keel, peer = results["keel"], results["mlflow"]
    one_keel, one_peer = _median(keel, "one_s"), _median(peer, "one_s")
    batch_keel, batch_peer = _median(keel, "batch_s"), _median(peer, "batch_s")
    assert one_keel is not None and one_peer is not None
    assert batch_keel is not None and batch_peer is not None
    report.add(
        Measure(
            f"MLflow client → server: {CALLS:,} log_metric calls",
            "s",
            one_keel,
            one_peer,
            target=one_peer / TARGET_RATIO,
            correct=correct,
            note="keel server vs mlflow server, each called by mlflow.MlflowClient; "
            f"median of {rounds} alternating rounds; target ≥ {TARGET_RATIO:g}× MLflow",
        )
    )
    report.add(
        Measure(
            f"MLflow client → server: one log_batch of {CALLS:,} metrics",
            "ms",
            batch_keel * 1000,
            batch_peer * 1000,
            target=batch_peer * 1000 / TARGET_RATIO,
            correct=correct,
        )
    )
    cpu = {
        name: (_median(rs, "one_cpu_ms"), _median(rs, "batch_cpu_ms"))
        for name, rs in results.items()
    }
    if all(v is not None for pair in cpu.values() for v in pair):
        report.notes.append(
            "mlflow-wire: server CPU time (user + system, steal excluded) per log_metric call: "
            f"keel {cpu['keel'][0]:.2f} ms, mlflow {cpu['mlflow'][0]:.2f} ms; per log_batch "
            f"of {CALLS:,}: keel {cpu['keel'][1]:.0f} ms, mlflow {cpu['mlflow'][1]:.0f} ms"
        )
    report.details["mlflow_wire"] = results
