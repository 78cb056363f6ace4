"""A metric's history as numpy arrays, read fast enough for a chart of 100,000 points.

The store's :meth:`~keel.store.base.MetadataStore.get_metric_arrays` reads the columns
without building a :class:`keel.entities.Metric` per point (about a second per 100,000 on
the reference machine, over three times the UI's budget for a whole page).
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def __len__(self) -> int:
        return int(self.values.shape[0])

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
