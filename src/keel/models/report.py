"""The train report: ``keel.report(name, value)`` and how values are summarised.

The tracker of the run in progress is kept in a context variable, so ``keel.report`` (and
the Launchpad-style ``report``) work from anywhere in model code during a keel command.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.models.base import Tracker

_current: ContextVar[Tracker | None] = ContextVar("keel_tracker", default=None)
log = logging.getLogger("keel.report")


@contextlib.contextmanager
def tracking(tracker: Tracker) -> Iterator[Tracker]:
    """Make ``tracker`` the one ``keel.report`` writes to while the block runs."""
    token = _current.set(tracker)
    try:
        yield tracker
    finally:
        _current.reset(token)


def report(name: str, value: Any) -> None:
    """Add ``name: value`` to the train report of the run in progress.

    Any JSON-like value works; a DataFrame is summarised (shape, columns, dtypes and
    ``describe()``), a numpy array becomes a list (or a summary when large). Outside a keel
    command nothing is recorded (a log line says so).
    """
    tracker = _current.get()
    if tracker is None:
        log.info("keel.report(%r) outside keel train/retest: not recorded", name)
        return
    tracker.report(name, value)


def summarize(value: Any, max_items: int = 1000) -> Any:
    """A JSON-friendly form of a report value."""
    import numpy as np
    import pandas as pd

    from keel.data.helpers import to_plain_python

    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        describe = value.describe(include="all") if len(value.columns) else pd.DataFrame()
        return {
            "type": "DataFrame",
            "shape": list(value.shape),
            "columns": [str(c) for c in value.columns],
            "dtypes": {str(c): str(t) for c, t in value.dtypes.items()},
            "describe": to_plain_python(
                {
                    str(col): {str(stat): v for stat, v in stats.items() if not _missing(v)}
                    for col, stats in describe.to_dict().items()
                }
            ),
        }
    if isinstance(value, np.ndarray):
        if value.size <= max_items:
            return to_plain_python(value.tolist())
        return {
            "type": "ndarray",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "describe": summarize(pd.Series(value.ravel())) if value.dtype.kind in "biuf" else {},
        }
    from keel.errors import InvalidInput

    try:
        return to_plain_python(value)
    except InvalidInput:  # not data: keep what it looks like
        return repr(value)


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False
