"""A small HTTP/1.1 load generator on asyncio raw streams, for the serving benchmark.

Usage::

    python -m bench.loadgen --url http://127.0.0.1:8000/invocations --body '{"x": 1}' \\
        --connections 16 --seconds 10 [--rate 500] [--json]

Each connection is one keep-alive TCP stream that sends a hand-written ``POST`` with a
``Content-Length`` and reads the status line, the headers and a ``Content-Length`` (or chunked)
body. No HTTP client library: the client side stays cheap, so the server is what is measured.

* closed loop (no ``--rate``): every connection sends back-to-back for ``--seconds``; the
  result is the throughput and the latency of each request from its send to its response.
* open loop (``--rate R``): request *i* is scheduled at ``start + i / R`` and taken by the first
  free connection; its latency counts from the scheduled time, not from when it could be sent,
  so a slow server is not hidden by the client waiting for it (no coordinated omission).

Prints one JSON object: requests, errors (non-2xx answers and failed connections), the
achieved rate, latency percentiles in ms and the generator's own CPU use (a CPU share near
100% means the generator, not the server, may be the limit). In the open loop,
``client_lag_p99_ms`` is how late the generator's own timer fired for requests whose
connection was free (its share of the latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    first_error: str | None = None
    sample: str | None = None
    lags: list[float] = field(default_factory=list)  # open loop: timer wake-up after schedule

    def fail(self, message: str) -> None:
        self.failures += 1
        if self.first_error is None:
            self.first_error = message


class Connection:
    """One keep-alive HTTP/1.1 connection that sends the same request again and again."""

    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if chunked:
            body = await self._chunked()
        else:
            body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(conn: Connection, stats: Stats, started: float) -> None:
    try:
        status, body = await conn.send()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        conn.close()
        stats.fail(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.01)  # a refused connection should not spin
        return
    stats.latencies.append(time.perf_counter() - started)
    stats.statuses[status] = stats.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        if stats.sample is None:
            stats.sample = body[:300].decode("utf-8", "replace")
    elif stats.first_error is None:
        stats.first_error = f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"


async def closed_loop(conns: list[Connection], seconds: float, stats: Stats) -> float:
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(conn: Connection) -> None:
        while time.perf_counter() < deadline:
            await _one(conn, stats, time.perf_counter())

    await asyncio.gather(*(worker(c) for c in conns))
    return time.perf_counter() - start


async def open_loop(conns: list[Connection], seconds: float, rate: float, stats: Stats) -> float:
    start = time.perf_counter() + 0.01
    total = int(seconds * rate)
    counter = iter(range(total))

    async def worker(conn: Connection) -> None:
        for i in counter:  # shared: the next scheduled request goes to the first free connection
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
                stats.lags.append(time.perf_counter() - scheduled)
            await _one(conn, stats, scheduled)

    await asyncio.gather(*(worker(c) for c in conns))
    return time.perf_counter() - start


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(url: str, body: bytes, connections: int, seconds: float, rate: float | None) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body
    conns = [Connection(host, port, request) for _ in range(connections)]
    stats = Stats()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    if rate:
        elapsed = await open_loop(conns, seconds, rate, stats)
    else:
        elapsed = await closed_loop(conns, seconds, stats)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    for conn in conns:
        conn.close()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    answered = len(stats.latencies)
    ok = sum(n for status, n in stats.statuses.items() if 200 <= status < 300)
    return {
        "mode": "open" if rate else "closed",
        "url": url,
        "connections": connections,
        "seconds": round(elapsed, 3),
        "target_rate": rate,
        "requests": answered,
        "ok": ok,
        "errors": answered - ok + stats.failures,
        "failed_connections": stats.failures,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "rps": ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": _percentile(stats.latencies, 0.50),
        "p90_ms": _percentile(stats.latencies, 0.90),
        "p99_ms": _percentile(stats.latencies, 0.99),
        "max_ms": max(stats.latencies) * 1000 if stats.latencies else None,
        "client_lag_p99_ms": _percentile(stats.lags, 0.99),
        "client_cpu_percent": 100 * cpu / elapsed if elapsed > 0 else None,
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "sample": stats.sample,
        "first_error": stats.first_error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="http://HOST:PORT/PATH to POST to")
    parser.add_argument("--body", required=True, help="the JSON request body")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send")
    parser.add_argument("--rate", type=float, help="open loop at this many requests per second")
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    parser.add_argument(
        "--no-uvloop", action="store_true", help="use asyncio's own loop even if uvloop is there"
    )
    args = parser.parse_args(argv)
    if args.connections < 1 or args.seconds <= 0 or (args.rate is not None and args.rate <= 0):
        parser.error("--connections, --seconds and --rate must be positive")
    runner: Any = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    result = runner(run(args.url, args.body.encode(), args.connections, args.seconds, args.rate))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
