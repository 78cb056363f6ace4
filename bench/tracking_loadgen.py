"""The tracking load generator: concurrent clients calling a tracking server, as MLflow's k6
benchmark of its Go backend does (``mlflow/mlflow-go-backend``, ``benchmarks/k6*.js``).

Usage::

    python -m bench.tracking_loadgen --scenario batch --api mlflow --base http://127.0.0.1:5000 \\
        --runs ID1,ID2 --clients 20 --seconds 10 [--token TOKEN]
    python -m bench.tracking_loadgen --scenario search --api keel --base http://… \\
        --experiment ID --clients 20 --seconds 10 --token TOKEN

Each client is one keep-alive HTTP/1.1 connection (:class:`bench.loadgen.Connection`, raw
asyncio streams: the client side stays cheap) that sends back-to-back for ``--seconds``:

* ``batch``: a ``log_batch`` of 10 metrics (``metric_0`` … ``metric_9``, value ``i × random``,
  ``step`` 0, ``timestamp`` now in ms: the body of ``k6LogBatchPerfScript.js``) to its own run
  (client *i* logs to ``runs[i % len(runs)]``). Timestamps of one client never repeat (a
  millisecond already used is bumped by one), so no two batches of a run are the same point.
  ``--api mlflow`` posts MLflow's ``/api/2.0/mlflow/runs/log-batch``; ``--api keel`` posts
  keel's ``/api/v1/runs/{id}/log-batch``.
* ``search``: ``search_runs`` of one experiment with ``max_results`` 1000 and no filter or
  order (``k6SearchRunPerfScript.js``); ``--api keel`` asks ``GET /api/v1/runs`` for the same
  page (that experiment's runs, newest first, 1,000).

Prints one JSON object: answered requests, errors (non-2xx answers and failed connections),
throughput, latency percentiles in ms, OK answers per run (``batch``: what the caller checks
the stored histories against), and for ``search`` the names of the runs of the first answer
and the smallest and largest answer in bytes (every answer must be the same page).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from bench.loadgen import Connection

METRICS_PER_BATCH = 10
SEARCH_PAGE = 1000


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    first_error: str | None = None
    ok_per_run: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    first_body: bytes | None = None


def _request(method: str, path: str, host: str, token: str | None, body: bytes = b"") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{auth}"
        + (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else "")
        + "\r\n"
    )
    return head.encode("latin-1") + body


class Client:
    """One simulated user: builds its next request, sends it, records the answer."""

    def __init__(self, args: argparse.Namespace, host: str, port: int, number: int) -> None:
        self.args, self.number = args, number
        self.host = f"{host}:{port}"
        self.conn = Connection(host, port, b"")
        self.run_id = args.run_ids[number % len(args.run_ids)] if args.run_ids else None
        self.last_ms = 0
        self.rng = random.Random(number)
        self.search = self._search_request() if args.scenario == "search" else b""

    def _search_request(self) -> bytes:
        a = self.args
        if a.api == "mlflow":
            body = json.dumps({"experiment_ids": [a.experiment], "max_results": SEARCH_PAGE})
            return _request(
                "POST", f"{a.prefix}/api/2.0/mlflow/runs/search", self.host, a.token, body.encode()
            )
        query = quote(json.dumps({"experiment_id": a.experiment}, separators=(",", ":")))
        sort = quote(json.dumps([["start_time", -1]], separators=(",", ":")))
        path = f"{a.prefix}/api/v1/runs?query={query}&sort={sort}&limit={SEARCH_PAGE}"
        return _request("GET", path, self.host, a.token)

    def next_request(self) -> bytes:
        if self.args.scenario == "search":
            return self.search
        now = max(int(time.time() * 1000), self.last_ms + 1)
        self.last_ms = now
        metrics = [
            {"key": f"metric_{i}", "value": i * self.rng.random(), "timestamp": now, "step": 0}
            for i in range(METRICS_PER_BATCH)
        ]
        a = self.args
        if a.api == "mlflow":
            body = {"run_id": self.run_id, "tags": [], "params": [], "metrics": metrics}
            path = f"{a.prefix}/api/2.0/mlflow/runs/log-batch"
        else:
            body = {"metrics": metrics}
            path = f"{a.prefix}/api/v1/runs/{self.run_id}/log-batch"
        return _request("POST", path, self.host, a.token, json.dumps(body).encode())

    async def loop(self, deadline: float, tally: Tally) -> None:
        while time.perf_counter() < deadline:
            self.conn.request = self.next_request()
            started = time.perf_counter()
            try:
                status, body = await self.conn.send()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self.conn.close()
                tally.failures += 1
                tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)  # a refused connection should not spin
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if not 200 <= status < 300:
                tally.first_error = tally.first_error or f"HTTP {status}: {body[:300]!r}"
            elif self.run_id is not None:
                tally.ok_per_run[self.run_id] = tally.ok_per_run.get(self.run_id, 0) + 1
            elif self.args.scenario == "search":
                tally.sizes.append(len(body))
                if tally.first_body is None:
                    tally.first_body = body


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _run_names(api: str, body: bytes | None) -> list[str] | None:
    """Names of the runs in a search answer, in order (None without an answer)."""
    if body is None:
        return None
    found = json.loads(body)
    if api == "mlflow":
        return [r["info"].get("run_name", "") for r in found.get("runs", [])]
    return [r["name"] for r in found]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = urlsplit(args.base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    args.prefix = parts.path.rstrip("/")
    clients = [Client(args, host, port, n) for n in range(args.clients)]
    tally = Tally()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await asyncio.gather(*(c.loop(start + args.seconds, tally) for c in clients))
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        c.conn.close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    answered = len(tally.latencies)
    return {
        "scenario": args.scenario,
        "api": args.api,
        "clients": args.clients,
        "seconds": round(elapsed, 3),
        "requests": answered,
        "ok": ok,
        "errors": answered - ok + tally.failures,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rate": ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _percentile(tally.latencies, 0.50),
        "p99_ms": _percentile(tally.latencies, 0.99),
        "max_ms": max(tally.latencies) * 1000 if tally.latencies else None,
        "client_cpu_percent": 100 * cpu / elapsed if elapsed > 0 else None,
        "ok_per_run": tally.ok_per_run,
        "first_names": _run_names(args.api, tally.first_body),
        "bytes_min": min(tally.sizes) if tally.sizes else None,
        "bytes_max": max(tally.sizes) if tally.sizes else None,
        "first_error": tally.first_error,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking_loadgen", description=__doc__)
    parser.add_argument("--scenario", choices=("batch", "search"), required=True)
    parser.add_argument("--api", choices=("mlflow", "keel"), required=True)
    parser.add_argument("--base", required=True, help="http://HOST:PORT of the server")
    parser.add_argument("--runs", default="", help="batch: comma-separated run ids")
    parser.add_argument("--experiment", help="search: the experiment id")
    parser.add_argument("--token", help="a bearer token (keel)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.run_ids = [r for r in args.runs.split(",") if r]
    if args.scenario == "batch" and not args.run_ids:
        parser.error("--scenario batch needs --runs")
    if args.scenario == "search" and not args.experiment:
        parser.error("--scenario search needs --experiment")
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    print(json.dumps(runner(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
