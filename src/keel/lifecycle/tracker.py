"""The tracker lifecycle commands give model code: writes into the current run."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.tracking.handles import RunApi


class RunTracker:
    """Params and metrics go to the run; report items are kept and saved at the end."""

    def __init__(self, run: RunApi) -> None:
        self.run = run
        self.items: dict[str, Any] = {}

    def log_params(self, params: Mapping[str, Any]) -> None:
        if params:
            self.run.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        numeric, other = split_metrics(metrics)
        if numeric:
            self.run.log_metrics(numeric, step=step)
        for key, value in other.items():
            self.report(f"metrics.{key}", value)

    def report(self, name: str, value: Any) -> None:
        from keel.models.report import summarize

        self.items[str(name)] = summarize(value)


def split_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """Numbers (tracked as metrics) and everything else (a confusion matrix: a report item)."""
    numeric: dict[str, float] = {}
    other: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, numbers.Real):
            numeric[str(key)] = float(value)
        else:
            other[str(key)] = value
    return numeric, other
