"""Prometheus metrics of the prediction API (prometheus_client).

Request counts by route, method and status; a latency histogram per route; micro-batch
sizes; invocation records written and waiting; model calls hung past their time limit.
Each app has its own registry. With several workers, ``keel serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` so every worker's numbers are summed on ``/metrics``, whichever
worker answers.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from keel.serving.http import ApiError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response

    from keel.serving.service import ModelService

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """The metric objects of one app and the request wrapper that feeds them."""

    def __init__(self, service: ModelService) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # the *_created series only add noise here
        self.service = service
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"model": service.model, "version": str(service.version)}
        self._const = labels
        self.requests = Counter(
            "keel_requests",
            "Requests answered, by route, method and status code.",
            ["model", "version", "route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "keel_request_duration_seconds",
            "Time from request to answer, by route.",
            ["model", "version", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "keel_batch_size",
            "Calls grouped into one predict_batch by micro-batching.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.records_written = Counter(
            "keel_invocation_records_written",
            "Invocation records stored in the artifact and metadata stores.",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        self.record_waits = Counter(
            "keel_invocation_record_waits",
            "Requests that waited for room in the full recording queue.",
            ["model", "version"],
            registry=self.registry,
        ).labels(**labels)
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.queue_depth = Gauge(
            "keel_invocation_queue_depth",
            "Invocation records waiting to be stored.",
            ["model", "version"],
            registry=self.registry,
            **gauge_mode,
        ).labels(**labels)
        self.hung_calls = Gauge(
            "keel_model_calls_hung",
            "Model calls still running past api.timeout_s (answered 504, holding a thread).",
            ["model", "version"],
            registry=self.registry,
            **gauge_mode,
        ).labels(**labels)
        self._children: dict[tuple[str, str, int], Any] = {}
        service.on_batch = self.batch_size.observe
        if service.recorder is not None:
            service.recorder.on_written = self._written

    def instrument(
        self, route: str, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint`` counted and timed; its :class:`ApiError` answered as JSON."""
        timer = self.latency.labels(route=route, **self._const)
        children = self._children
        requests = self.requests
        const = self._const

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await endpoint(request)
            except ApiError as exc:
                response = exc.response()
            status = response.status_code
            key = (route, request.method, status)
            counter = children.get(key)
            if counter is None:
                counter = children[key] = requests.labels(
                    route=route, method=request.method, status=str(status), **const
                )
            counter.inc()
            timer.observe(time.perf_counter() - started)
            return response

        return wrapped

    def render(self) -> tuple[bytes, str]:
        """The exposition text (all workers' numbers in multiprocess mode)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self._sync()
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _written(self, count: int, depth: int) -> None:
        """Called by the recorder's writer thread after each stored batch."""
        self.records_written.inc(count)
        self.queue_depth.set(depth)

    def _sync(self) -> None:
        self.hung_calls.set(self.service.runner.hung)
        if self.service.recorder is not None:
            self.queue_depth.set(self.service.recorder.depth)
