"""``keel monitor update``: live profiles built afterwards from stored invocation records.

For records a serving process stored without profiling them (monitoring was off, an older
keel, a batch of records logged through the Python API). Windows that a serving process
profiled (a writer other than ``update``) are left as they are, so nothing is counted
twice; for every other window the ``update`` writer's profile is extended with the records
newer than the last one it saw, so each pass reads only new records.

Records are read one window at a time; ``map_windows`` may run the windows elsewhere (the
Dask executor does, see :mod:`keel.jobs.monitoring`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keel.monitoring.live import fold, window_start
from keel.monitoring.profiles import Profile, ProfileSettings
from keel.monitoring.storage import load_windows, save_window, window_files

if TYPE_CHECKING:
    from keel.tracking.client import Client, VersionRef

UPDATE_WRITER = "update"
#: records younger than this are left for the next pass (a writer may still be storing them)
SETTLE_MS = 5_000

#: (start_ms, end_ms, since_ms) → the profile of the window's records from since_ms on
WindowTask = tuple[int, int, int]


@dataclass
class UpdateResult:
    windows: list[int] = field(default_factory=list)  # window starts written
    records: int = 0
    skipped_live: int = 0  # windows a serving process profiled itself


def profile_window_records(
    client: Client,
    version: VersionRef,
    task: WindowTask,
    window_s: int,
    kinds: Mapping[str, Mapping[str, str]] | None,
    settings: ProfileSettings,
) -> Profile | None:
    """The profile of one window's records from ``since_ms`` to its end (None if none)."""
    start, end, since = task
    records = client.find_invocations(version, since=since, until=end - 1, limit=None)
    if not records:
        return None
    profiles: dict[int, Profile] = {}
    fold(profiles, records, window_s, kinds, settings, UPDATE_WRITER)
    return profiles.get(start)


def update_profiles(
    client: Client,
    version: VersionRef,
    *,
    window_s: int = 3600,
    settings: ProfileSettings | None = None,
    kinds: Mapping[str, Mapping[str, str]] | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    map_windows: Callable[[Sequence[WindowTask]], Iterable[Profile | None]] | None = None,
) -> UpdateResult:
    """Profile the stored records no live profile covers (see the module docstring)."""
    settings = settings or ProfileSettings()
    mv = client.get_model_version(version)
    until = int(time.time() * 1000) - SETTLE_MS if until_ms is None else int(until_ms)
    stored = [w for w in window_files(client, mv) if w.window_s == window_s]
    live = {w.start_ms for w in stored if not w.writer.startswith(UPDATE_WRITER)}
    previous = dict(
        (w.start_ms, p)
        for w, p in load_windows(client, [w for w in stored if w.writer == UPDATE_WRITER])
    )
    seen = max((int(p.meta.get("last_ts", 0)) for p in previous.values()), default=None)
    # never before the last record an earlier pass saw: those are in its profiles already
    bounds = [b for b in (since_ms, None if seen is None else seen + 1) if b is not None]
    first = max(bounds) if bounds else None
    # the index alone (no record read) says which windows have new records
    index = client.store.find_invocations(mv.id, first, until, None)
    result = UpdateResult()
    tasks: list[WindowTask] = []
    for start in sorted({window_start(row.timestamp, window_s) for row in index}):
        if start in live:
            result.skipped_live += 1
            continue
        end = min(start + window_s * 1000, until + 1)
        tasks.append((start, end, start if first is None else max(start, first)))
    if map_windows is None:
        profiles: Iterable[Profile | None] = (
            profile_window_records(client, mv, t, window_s, kinds, settings) for t in tasks
        )
    else:
        profiles = map_windows(tasks)
    for task, profile in zip(tasks, profiles, strict=True):
        if profile is None:
            continue
        merged = previous[task[0]].merge(profile) if task[0] in previous else profile
        save_window(client, mv, window_s, task[0], UPDATE_WRITER, merged)
        result.windows.append(task[0])
        result.records += profile.records
    return result
