"""Buffered metric logging: one-by-one ``log_metrics`` calls cost no database round trip.

Points wait in memory and are written in batches: when a run ends, when ``flush()`` is
called, when a buffer grows past ``max_points``, every ``interval`` seconds from a
background thread, and at interpreter exit. A batch that fails to write stays in the buffer
and is tried again; the next explicit flush raises the error.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable, Sequence

from keel.entities import Metric

log = logging.getLogger(__name__)

Writer = Callable[[str, Sequence[Metric]], None]


class MetricBuffer:
    """Metric points per run, flushed through ``writer(run_id, points)``."""

    def __init__(self, writer: Writer, interval: float = 2.0, max_points: int = 5000) -> None:
        self._writer = writer
        self._interval = interval
        self._max_points = max_points
        self._points: dict[str, list[Metric]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        _live_buffers.add(self)

    def add(self, run_id: str, points: Sequence[Metric]) -> None:
        """Queue points for a run; may write synchronously when the buffer is full."""
        with self._lock:
            self._points.setdefault(run_id, []).extend(points)
            self._count += len(points)
            full = self._count >= self._max_points
            if self._thread is None and not self._closed:
                self._start_thread()
        if full:
            self.flush()

    def pending(self, run_id: str | None = None) -> int:
        """How many points wait to be written (for one run, or all)."""
        with self._lock:
            if run_id is None:
                return self._count
            return len(self._points.get(run_id, ()))

    def flush(self, run_id: str | None = None) -> None:
        """Write waiting points now (one run's, or all); raises if a write fails."""
        with self._flush_lock:
            with self._lock:
                if run_id is None:
                    batches = self._points
                    self._points = {}
                else:
                    batches = {run_id: self._points.pop(run_id, [])}
                self._count -= sum(len(p) for p in batches.values())
            failed: dict[str, list[Metric]] = {}
            error: BaseException | None = None
            for rid, points in batches.items():
                if not points:
                    continue
                try:
                    self._writer(rid, points)
                except BaseException as exc:
                    failed[rid] = points
                    error = exc
            if failed:
                with self._lock:
                    for rid, points in failed.items():
                        self._points[rid] = points + self._points.get(rid, [])
                        self._count += len(points)
            if error is not None:
                raise error

    def discard(self, run_id: str) -> int:
        """Drop a run's waiting points (used when the run itself is gone)."""
        with self._lock:
            dropped = self._points.pop(run_id, [])
            self._count -= len(dropped)
        return len(dropped)

    def close(self) -> None:
        """Flush everything and stop the background thread."""
        self._closed = True
        self._wakeup.set()
        self.flush()

    def _start_thread(self) -> None:
        ref = weakref.ref(self)
        interval = self._interval
        wakeup = self._wakeup

        def loop() -> None:
            while True:
                wakeup.wait(interval)
                buffer = ref()
                if buffer is None or buffer._closed:
                    return
                try:
                    buffer.flush()
                except Exception as exc:  # kept in the buffer; the next flush retries
                    log.warning("keel: background metric flush failed, will retry: %s", exc)
                del buffer

        self._thread = threading.Thread(target=loop, name="keel-metric-flush", daemon=True)
        self._thread.start()


_live_buffers: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_live_buffers):
        try:
            buffer.close()
        except Exception as exc:
            log.error("keel: could not write buffered metrics at exit: %s", exc)
