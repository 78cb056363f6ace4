"""Live quality: late ground truth joined to the invocation records by request id.

keel.yml's ``monitoring.labels`` names a data source whose rows hold a record's request id
and the true value (they arrive after the prediction: a sale closes, a ticket is resolved).
For each report window the records of the window with a label are joined to it and the
model's metric is computed on them: accuracy for categories, MAE and RMSE for numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.records import OK_STATUSES, rows_of

if TYPE_CHECKING:
    from keel.tracking.client import Client, VersionRef


@dataclass
class Labels:
    """The true values by request id, and which output field they are compared with."""

    by_id: dict[str, Any]
    prediction: str
    metric: str = "auto"  # accuracy | mae | rmse | auto (by the labels' kind)

    @classmethod
    def from_frame(
        cls, frame: Any, id_column: str, label_column: str, prediction: str, metric: str = "auto"
    ) -> Labels:
        for column in (id_column, label_column):
            if column not in frame.columns:
                raise InvalidInput(
                    f"the labels source has no column {column!r} (it has "
                    f"{', '.join(map(str, frame.columns))}): set monitoring.labels.id_column "
                    "and label_column"
                )
        pairs = frame[[id_column, label_column]].dropna()
        return cls(
            {str(k): v for k, v in zip(pairs[id_column], pairs[label_column], strict=True)},
            prediction,
            metric,
        )


def _metric(labels: Labels, truths: Sequence[Any]) -> str:
    if labels.metric != "auto":
        return labels.metric
    numeric = all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in truths)
    return "mae" if numeric and len({t for t in truths}) > 20 else "accuracy"


def score(labels: Labels, pairs: Sequence[tuple[Any, Any]]) -> dict[str, Any] | None:
    """The metric over (predicted, true) pairs; None when there are none."""
    if not pairs:
        return None
    metric = _metric(labels, [t for _p, t in pairs])
    if metric == "accuracy":
        value = sum(str(p) == str(t) for p, t in pairs) / len(pairs)
        return {"metric": "accuracy", "value": round(value, 6), "labelled": len(pairs)}
    errors = []
    for p, t in pairs:
        try:
            errors.append(float(p) - float(t))
        except (TypeError, ValueError):
            continue
    if not errors:
        return None
    if metric == "rmse":
        value = math.sqrt(sum(e * e for e in errors) / len(errors))
    else:
        value = sum(abs(e) for e in errors) / len(errors)
    return {"metric": metric, "value": round(value, 6), "labelled": len(errors)}


def quality_by_window(
    client: Client,
    version: VersionRef,
    labels: Labels,
    windows: Sequence[tuple[int, int]],
) -> dict[int, dict[str, Any] | None]:
    """Per window start, the metric on that window's labelled records."""
    out: dict[int, dict[str, Any] | None] = {}
    for start, end in windows:
        pairs = []
        for record in client.find_invocations(version, since=start, until=end - 1, limit=None):
            if record.request_id not in labels.by_id:
                continue
            if str(record.status).lower() not in OK_STATUSES:
                continue
            for _inputs, outputs in rows_of(record.input, record.result)[:1]:
                if labels.prediction in outputs:
                    pairs.append((outputs[labels.prediction], labels.by_id[record.request_id]))
        out[start] = score(labels, pairs)
    return out
