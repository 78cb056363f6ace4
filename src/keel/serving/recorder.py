"""Invocation recording off the request path: a bounded queue and the thread that drains it.

A request puts its record on the queue and goes on; a writer thread takes records in
batches (up to ``record_batch_size``, or whatever arrived within ``record_flush_s``) and
stores each batch with :meth:`keel.Client.log_invocations` (one JSON-lines file in the
artifact store, one index row per record in the metadata store).

Records are never dropped silently. A full queue makes the request wait for room (up to
``record_wait_s``; past that the request fails with 503 and says why). A failed write is
retried with backoff while the queue absorbs new records. :meth:`InvocationRecorder.close`
(on SIGTERM/SIGINT, through the app's shutdown) writes everything still queued; what cannot
be stored by then is written to a local JSON-lines file whose path is logged as an error.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from keel.entities import InvocationRecord
from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.monitoring.live import LiveProfiler
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi

log = logging.getLogger("keel.serving")


class RecordingBacklog(KeelError):
    """The recording queue stayed full for longer than the request may wait."""


class InvocationRecorder:
    """Queues invocation records and stores them in batches from a background thread."""

    def __init__(
        self,
        client: Client,
        version_ref: tuple[str, int] | ModelVersionApi,
        *,
        queue_size: int = 10_000,
        wait_s: float = 10.0,
        batch_size: int = 1_000,
        flush_s: float = 1.0,
        fallback_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.version_ref = version_ref
        self.wait_s = wait_s
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.fallback_dir = fallback_dir or Path.cwd()
        self.written = 0  # records stored (read by /metrics)
        self.failed_writes = 0
        self.on_written: Callable[[int, int], None] | None = None  # (records, queue depth)
        # folds stored records into live monitoring profiles (keel.monitoring.live)
        self.profiler: LiveProfiler | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake = threading.Event()  # set by close(): stop sleeping, write what is left

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> InvocationRecorder:
        if self._thread is None:
            if isinstance(self.version_ref, tuple):  # resolved once, not per batch
                self.version_ref = self.client.get_model_version(self.version_ref)
            self._thread = threading.Thread(
                target=self._drain, name="keel-invocation-writer", daemon=True
            )
            self._thread.start()
        return self

    def submit_nowait(self, record: InvocationRecord) -> bool:
        """Queue ``record`` if there is room now (the fast path); False when full."""
        if self._closed:
            raise RecordingBacklog("the server is shutting down and no longer records")
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            return False
        return True

    def submit(self, record: InvocationRecord) -> None:
        """Queue ``record``, waiting up to ``wait_s`` for room (call off the event loop)."""
        if self.submit_nowait(record):
            return
        try:
            self._queue.put(record, timeout=self.wait_s)
        except queue.Full:
            raise RecordingBacklog(
                f"invocation records are not being stored fast enough ({self._queue.maxsize} "
                f"waiting for over {self.wait_s:g} s): check the store; this request was "
                "answered but not recorded, so it is refused"
            ) from None

    def close(self, timeout: float = 60.0) -> None:
        """Store everything queued, then stop the writer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the invocation writer did not finish within %.0f s", timeout)
                return
        self._write_leftovers(self._take_all())
        self._profile([], force=True)

    # --- the writer thread ----------------------------------------------------------------

    def _take_all(self) -> list[InvocationRecord]:
        items: list[InvocationRecord] = []
        while True:
            try:
                items.append(self._queue.get_nowait())  # type: ignore[arg-type]
            except queue.Empty:
                return items

    def _drain(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                if not self._store(batch):
                    self._write_leftovers(batch + self._take_all())
                    return
                self._profile(batch)
            elif self._closed and self._queue.empty():
                return
            else:
                self._profile([])  # store a window's profile on time when traffic stops

    def _profile(self, records: list[InvocationRecord], force: bool = False) -> None:
        """Fold stored records into the live profiles (monitoring never fails a request or
        stops the writer: a failure is logged and the records stay stored)."""
        if self.profiler is None:
            return
        try:
            if records:
                self.profiler.add(records)
            self.profiler.flush(force)
        except Exception as exc:
            log.warning("monitoring: live profile not updated (%s)", exc)

    def _next_batch(self) -> list[InvocationRecord]:
        """Up to ``batch_size`` queued records, collected every ``flush_s``.

        The writer sleeps rather than waiting on the queue: a thread blocked in
        ``queue.get`` is woken by every request's ``put``, and each wake-up is a hand-off of
        the GIL on the request path.
        """
        if self._queue.qsize() < self.batch_size and not self._closed:
            self._wake.wait(self.flush_s)
        batch: list[InvocationRecord] = []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())  # type: ignore[arg-type]
            except queue.Empty:
                break
        return batch

    def _store(self, records: list[InvocationRecord]) -> bool:
        """Write one batch, retrying with backoff (a few times only once closing)."""
        delay, attempt, after_close = 0.2, 0, 0
        while True:
            attempt += 1
            try:
                self.client.log_invocations(self.version_ref, records)
            except Exception as exc:  # any store failure: keep the records and retry
                self.failed_writes += 1
                log.warning(
                    "storing %d invocation records failed (attempt %d): %s",
                    len(records),
                    attempt,
                    exc,
                )
                if self._closed:
                    after_close += 1
                    if after_close >= 5:
                        return False
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.written += len(records)
            if self.on_written is not None:
                self.on_written(len(records), self.depth)
            return True

    def _write_leftovers(self, records: list[InvocationRecord]) -> None:
        if not records:
            return
        target = (
            self.fallback_dir / f"keel-unstored-invocations-{os.getpid()}-{time.time_ns()}.jsonl"
        )
        with target.open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r.__dict__, default=str) + "\n")
        log.error(
            "%d invocation records could not be stored; they are saved in %s",
            len(records),
            target,
        )
