"""SimpleML's metrics (``from keel.compat.simpleml.metrics import AccuracyMetric``)."""

from typing import Any

from keel.compat.simpleml.metrics import classification
from keel.compat.simpleml.metrics.base_metric import Metric
from keel.compat.simpleml.metrics.classification import (
    CURVE_METRICS,
    AccuracyMetric,
    AggregateBinaryClassificationMetric,
    BinaryClassificationMetric,
    ClassificationMetric,
    CurveMetric,
    F1ScoreMetric,
    FprMetric,
    RocAucMetric,
    TprMetric,
)

__all__ = [
    "AccuracyMetric",
    "AggregateBinaryClassificationMetric",
    "BinaryClassificationMetric",
    "ClassificationMetric",
    "CurveMetric",
    "F1ScoreMetric",
    "FprMetric",
    "Metric",
    "RocAucMetric",
    "TprMetric",
    *CURVE_METRICS,
]


def __getattr__(name: str) -> Any:
    if name in CURVE_METRICS:
        return getattr(classification, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
