"""Live profiles: invocation records folded into per-window profiles as they are stored.

The serving process's record writer hands each stored batch to a :class:`LiveProfiler`
(off the request path, in the writer thread). Records fall into fixed windows aligned to the
epoch (``monitoring.window``, 1 h by default); each window's profile is stored every
``flush_s`` while it fills and once more when the server stops, under this process's own
writer name, so a check over a month reads a month of small profiles and never the records.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from keel.monitoring.profiles import NUMBER, ColumnProfile, Profile, ProfileSettings, update_columns
from keel.monitoring.records import OK_STATUSES, columns_of

if TYPE_CHECKING:
    from keel.tracking.client import Client, VersionRef

log = logging.getLogger("keel.monitoring")


def writer_name() -> str:
    """This process's name among a replica set's writers: host, pid and a random part."""
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def window_start(timestamp_ms: int, window_s: int) -> int:
    size = window_s * 1000
    return timestamp_ms // size * size


def fold(
    profiles: dict[int, Profile],
    records: Iterable[Any],
    window_s: int,
    kinds: Mapping[str, Mapping[str, str]] | None,
    settings: ProfileSettings,
    source: str,
) -> set[int]:
    """Fold ``records`` into ``profiles`` (one per window start); the windows touched."""
    by_window: dict[int, list[Any]] = {}
    for record in records:
        by_window.setdefault(window_start(int(record.timestamp), window_s), []).append(record)
    for start, group in by_window.items():
        profile = profiles.get(start)
        if profile is None:
            profile = profiles[start] = Profile(
                meta={"source": source, "window_start": start, "window_s": window_s}
            )
        inputs, outputs, rows = columns_of(group)
        update_columns(profile.inputs, inputs, (kinds or {}).get("input"), settings, rows)
        update_columns(profile.outputs, outputs, (kinds or {}).get("output"), settings, rows)
        profile.rows += rows
        profile.records += len(group)
        profile.errors += sum(str(r.status).lower() not in OK_STATUSES for r in group)
        if profile.latency is None:
            profile.latency = ColumnProfile(NUMBER, k=settings.k)
        profile.latency.update([float(r.latency_ms) for r in group])
        stamps = [int(r.timestamp) for r in group]
        first, last = min(stamps), max(stamps)
        profile.meta["first_ts"] = min(profile.meta.get("first_ts", first), first)
        profile.meta["last_ts"] = max(profile.meta.get("last_ts", last), last)
    return set(by_window)


class LiveProfiler:
    """Keeps this process's profiles of the current windows and stores them as they fill."""

    def __init__(
        self,
        client: Client,
        version: VersionRef,
        *,
        window_s: int = 3600,
        flush_s: float = 30.0,
        kinds: Mapping[str, Mapping[str, str]] | None = None,
        settings: ProfileSettings | None = None,
        writer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.version = version
        self.window_s = window_s
        self.flush_s = flush_s
        self.kinds = kinds
        self.settings = settings or ProfileSettings()
        self.writer = writer or writer_name()
        self.clock = clock
        self.profiles: dict[int, Profile] = {}
        self._dirty: set[int] = set()
        # windows already stored and forgotten: a late record for one is stored under a new
        # name (writer-1, -2…), so it adds to the window instead of overwriting its file
        self._generation: dict[int, int] = {}
        self._last_flush = clock()
        self.stored = 0  # window profiles written (read by tests and /metrics)

    def add(self, records: Iterable[Any]) -> None:
        self._dirty |= fold(
            self.profiles, records, self.window_s, self.kinds, self.settings, "live"
        )

    def flush(self, force: bool = False) -> None:
        """Store the windows changed since the last flush, if ``flush_s`` has passed (or
        ``force``); windows that ended before the last one stored are then forgotten."""
        from keel.monitoring.storage import save_window

        now = self.clock()
        if not force and now - self._last_flush < self.flush_s:
            return
        self._last_flush = now
        for start in sorted(self._dirty):
            generation = self._generation.get(start, 0)
            name = f"{self.writer}-{generation}" if generation else self.writer
            save_window(self.client, self.version, self.window_s, start, name, self.profiles[start])
            self.stored += 1
        self._dirty.clear()
        # a window that is over and stored is not needed in memory; a late record for it
        # starts a fresh profile under the same name, so keep recent ones a window longer
        current = window_start(int(now * 1000), self.window_s)
        for start in [s for s in self.profiles if s < current - self.window_s * 1000]:
            if start not in self._dirty:
                del self.profiles[start]
                self._generation[start] = self._generation.get(start, 0) + 1
