"""A metric's history as numpy arrays, read fast enough for a chart of 100,000 points.

The store's :meth:`~keel.store.base.MetadataStore.get_metric_arrays` reads the columns
without building a :class:`keel.entities.Metric` per point (about a second per 100,000 on
the reference machine, over three times the UI's budget for a whole page).

:func:`chart_series` is what charts read: a history already reduced to the points a chart
draws. Reading a million points out of SQLite still takes about a second (0.8 s of it in
the driver handing rows to Python), so a long history is drawn from the store's per-bucket
summaries (:mod:`keel.store.buckets`: each bucket's lowest and highest point, kept up to
date as points are logged) when they cover every point of it. A long history they cannot
draw (logged at few distinct steps) has its reduction kept in memory, keyed by the store's
cheap signature of the history (count and highest point id, read from an index: the
history is append-only, so the same signature means the same points).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from threading import Lock
from typing import TYPE_CHECKING

import numpy as np

from keel.store.validation import check_key

if TYPE_CHECKING:
    from keel.tracking.client import Client


@dataclass(frozen=True)
class Series:
    """Every point of one metric of one run, in history order."""

    key: str
    steps: np.ndarray  # int64
    timestamps: np.ndarray  # int64, ms since the epoch
    values: np.ndarray  # float64, NaN where a NaN was logged
    total: int | None = None  # points in the whole history, when these are a reduction

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def points(self) -> int:
        """Points in the metric's history (``len`` is how many this series carries)."""
        return len(self) if self.total is None else self.total

    @property
    def stepped(self) -> bool:
        """Whether the steps tell points apart (else time is the better x axis)."""
        return len(self) < 2 or bool(self.steps.min() != self.steps.max())


def metric_series(client: Client, run_id: str, key: str) -> Series:
    """The history of metric ``key`` of run ``run_id`` (empty if never logged)."""
    check_key(key, "metric")
    client.flush(run_id)  # points this server's client still buffers belong in the chart
    arrays = client.store.get_metric_arrays(run_id, key)
    return Series(key, arrays.steps, arrays.timestamps, arrays.values)


#: histories longer than this are kept reduced in memory (shorter ones read in milliseconds)
CACHE_FROM = 20_000
CACHE_SIZE = 256
#: buckets a history needs before its chart is drawn from them (min and max of each: as
#: many points as a chart shows)
OVERVIEW_BUCKETS = 500
_reduced: OrderedDict[tuple[str, str, str], tuple[tuple[int, int], Series]] = OrderedDict()
_lock = Lock()


def chart_series(client: Client, run_id: str, key: str) -> Series:
    """The history of ``key`` reduced to what one chart line draws (at most ``MAX_POINTS``
    points, min/max per bucket, see :mod:`keel.server.ui.downsample`); ``points`` says how
    many the history holds."""
    check_key(key, "metric")
    client.flush(run_id)
    signature = client.store.metric_signature(run_id, key)
    if signature is None or signature[0] <= CACHE_FROM:
        return _reduce(metric_series(client, run_id, key))
    overview = client.store.metric_overview(run_id, key, OVERVIEW_BUCKETS)
    if overview is not None and overview.points == signature[0]:  # no point missing
        a = overview.arrays
        return replace(_reduce(Series(key, a.steps, a.timestamps, a.values)), total=signature[0])
    name = (repr(client.store), run_id, key)
    with _lock:
        found = _reduced.get(name)
        if found is not None and found[0] == signature:
            _reduced.move_to_end(name)
            return found[1]
    reduced = _reduce(metric_series(client, run_id, key))
    if reduced.points == signature[0]:  # nothing was appended between the two reads
        with _lock:
            _reduced[name] = (signature, reduced)
            while len(_reduced) > CACHE_SIZE:
                _reduced.popitem(last=False)
    return reduced


def _reduce(series: Series) -> Series:
    from keel.server.ui.downsample import downsample_indices

    index = downsample_indices(series.values)
    if index.shape[0] == len(series):
        return series
    return Series(
        series.key,
        series.steps[index],
        series.timestamps[index],
        series.values[index],
        total=series.points,
    )
