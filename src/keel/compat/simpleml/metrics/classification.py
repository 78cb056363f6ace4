"""SimpleML's classification metrics.

Aggregates (one number in ``values["agg"]``): ``AccuracyMetric``, ``TprMetric``,
``FprMetric``, ``F1ScoreMetric``, ``RocAucMetric``. Curves (``values`` maps a constraint
to the best value at it, over 201 probability thresholds): ``<Constraint><Value>Metric``
for every pair of threshold, tpr, tnr, fnr, fpr, fdr, for, ppv, npv, predicted
positive/negative rate, accuracy, f1 score, mcc, informedness and markedness, named
``<constraint>_<value>_curve`` as SimpleML names them.
"""

from __future__ import annotations

import logging
from typing import Any

from keel.compat.simpleml.constants import TRAIN_SPLIT, VALIDATION_SPLIT
from keel.compat.simpleml.metrics.base_metric import Metric
from keel.compat.simpleml.utils.errors import MetricError

log = logging.getLogger("keel.compat.simpleml")


class ClassificationMetric(Metric):
    """A metric of a classifier on a split (``dataset_split``) of its dataset."""

    def __init__(self, dataset_split: str | None = None, **kwargs: Any) -> None:
        name = kwargs.pop("name", "")
        if dataset_split == TRAIN_SPLIT:
            name = "in_sample_" + name
        elif dataset_split == VALIDATION_SPLIT:
            name = "validation_" + name
        super().__init__(name=name, **kwargs)
        self.config["dataset_split"] = dataset_split

    def _get_split(self, column: str) -> Any:
        split = self.config.get("dataset_split")
        model = self.model
        # the model's own dataset: the pipeline's splits (e.g. its random TEST rows)
        pipeline = None if model is None else model.pipeline
        if pipeline is not None and str(self.dataset.id) == str(pipeline.dataset_id):  # type: ignore[union-attr]
            return self._get_pipeline_split(column=column, split=split)
        return self._get_dataset_split(column=column, split=split)

    def _need_dataset(self) -> None:
        if self.dataset is None:
            raise MetricError(f"metric {self.name!r}: add_dataset() before score()")

    @property
    def labels(self) -> Any:
        self._need_dataset()
        return self._get_split(column="y")

    @property
    def probabilities(self) -> Any:
        self._need_dataset()
        found = self.model.predict_proba(X=self._get_split(column="X"), transform=True)  # type: ignore[union-attr]
        self.validate_predictions(found)
        return found

    @property
    def predictions(self) -> Any:
        self._need_dataset()
        found = self.model.predict(X=self._get_split(column="X"), transform=True)  # type: ignore[union-attr]
        self.validate_predictions(found)
        return found

    @staticmethod
    def validate_predictions(predictions: Any) -> None:
        if (
            predictions is None
            or getattr(predictions, "size", 1) == 0
            or getattr(predictions, "empty", False)
        ):
            raise MetricError("cannot score an empty dataset split")


class BinaryClassificationMetric(ClassificationMetric):
    """Labels in {0, 1}; the positive class's probability."""

    @property
    def labels(self) -> Any:
        labels = super().labels
        self.validate_labels(labels)
        return labels

    @staticmethod
    def validate_labels(labels: Any) -> None:
        if labels is None or set(labels) - {0, 1}:
            raise MetricError("binary metrics need labels in {0, 1}")

    @property
    def probabilities(self) -> Any:
        found = super().probabilities
        if len(found.shape) > 1 and found.shape[1] > 1:
            found = found[:, 1]
        return found

    @property
    def predictions(self) -> Any:
        found = super().predictions
        if len(found.shape) > 1 and found.shape[1] > 1:
            found = found[:, 1]
        return found

    @property
    def confusion_matrix(self) -> Any:
        if getattr(self, "_confusion_matrix", None) is None:
            self.create_confusion_matrix()
        return self._confusion_matrix

    @staticmethod
    def _create_confusion_matrix(thresholds: Any, probabilities: Any, labels: Any) -> Any:
        import numpy as np
        import pandas as pd
        from sklearn.metrics import confusion_matrix

        rows = []
        for threshold in thresholds:
            predicted = np.where(probabilities >= threshold, 1, 0)
            tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
            rows.append((threshold, tn, fp, fn, tp))
        return pd.DataFrame(rows, columns=["threshold", "tn", "fp", "fn", "tp"])

    def create_confusion_matrix(self) -> None:
        import numpy as np

        self._confusion_matrix = self._create_confusion_matrix(
            np.linspace(0, 1, 201), self.probabilities, self.labels
        )

    @staticmethod
    def dedupe_curve(
        keys: Any, values: Any, maximize: bool = True, round_places: int = 3
    ) -> dict[Any, Any]:
        import pandas as pd

        df = pd.DataFrame(
            {
                "keys": [round(k, round_places) for k in keys],
                "values": [round(v, round_places) for v in values],
            }
        ).dropna(axis=0)
        return df.groupby("keys").agg({"values": "max" if maximize else "min"}).to_dict()["values"]

    # the rates, one per threshold
    def _cm(self) -> Any:
        return self.confusion_matrix

    @property
    def thresholds(self) -> Any:
        return self._cm().threshold

    @property
    def true_positive_rate(self) -> Any:
        c = self._cm()
        return c.tp / (c.tp + c.fn)

    @property
    def false_positive_rate(self) -> Any:
        c = self._cm()
        return c.fp / (c.fp + c.tn)

    @property
    def true_negative_rate(self) -> Any:
        c = self._cm()
        return c.tn / (c.fp + c.tn)

    @property
    def false_negative_rate(self) -> Any:
        c = self._cm()
        return c.fn / (c.tp + c.fn)

    @property
    def false_discovery_rate(self) -> Any:
        c = self._cm()
        return c.fp / (c.fp + c.tp)

    @property
    def false_omission_rate(self) -> Any:
        c = self._cm()
        return c.fn / (c.tn + c.fn)

    @property
    def positive_predictive_value(self) -> Any:
        c = self._cm()
        return c.tp / (c.fp + c.tp)

    @property
    def negative_predictive_value(self) -> Any:
        c = self._cm()
        return c.tn / (c.tn + c.fn)

    @property
    def predicted_positive_rate(self) -> Any:
        c = self._cm()
        return (c.tp + c.fp) / (c.fp + c.tn + c.tp + c.fn)

    @property
    def predicted_negative_rate(self) -> Any:
        c = self._cm()
        return (c.tn + c.fn) / (c.fp + c.tn + c.tp + c.fn)

    @property
    def accuracy(self) -> Any:
        c = self._cm()
        return (c.tp + c.tn) / (c.fp + c.tn + c.tp + c.fn)

    @property
    def f1(self) -> Any:
        c = self._cm()
        return (2.0 * c.tp) / (2.0 * c.tp + c.fp + c.fn)

    @property
    def matthews_correlation_coefficient(self) -> Any:
        c = self._cm()
        denominator = ((c.fp + c.tp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn)) ** 0.5
        return (c.tp * c.tn - c.fp * c.fn) / denominator

    @property
    def informedness(self) -> Any:
        return self.true_positive_rate + self.true_negative_rate - 1

    @property
    def markedness(self) -> Any:
        return self.positive_predictive_value + self.negative_predictive_value - 1


class AggregateBinaryClassificationMetric(BinaryClassificationMetric):
    """One number from the predictions (``values = {"agg": …}``)."""

    metric_name = ""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["name"] = self.metric_name
        super().__init__(**kwargs)

    @staticmethod
    def _score(predictions: Any, labels: Any) -> float:
        raise NotImplementedError

    def score(self) -> None:
        self.values = {"agg": float(self._score(self.predictions, self.labels))}


class AccuracyMetric(AggregateBinaryClassificationMetric):
    metric_name = "classification_accuracy"

    @staticmethod
    def _score(predictions: Any, labels: Any) -> float:
        from sklearn.metrics import accuracy_score

        return accuracy_score(y_true=labels, y_pred=predictions)


class TprMetric(AggregateBinaryClassificationMetric):
    metric_name = "tpr"

    @staticmethod
    def _score(predictions: Any, labels: Any) -> float:
        from sklearn.metrics import confusion_matrix

        _tn, _fp, fn, tp = confusion_matrix(labels, predictions, labels=[0, 1]).ravel()
        return float(tp) / (tp + fn)


class FprMetric(AggregateBinaryClassificationMetric):
    metric_name = "fpr"

    @staticmethod
    def _score(predictions: Any, labels: Any) -> float:
        from sklearn.metrics import confusion_matrix

        tn, fp, _fn, _tp = confusion_matrix(labels, predictions, labels=[0, 1]).ravel()
        return float(fp) / (fp + tn)


class F1ScoreMetric(AggregateBinaryClassificationMetric):
    metric_name = "f1_score"

    @staticmethod
    def _score(predictions: Any, labels: Any) -> float:
        from sklearn.metrics import f1_score

        return f1_score(y_true=labels, y_pred=predictions)


class RocAucMetric(BinaryClassificationMetric):
    """The area under the ROC curve, from the probabilities."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["name"] = "roc_auc"
        super().__init__(**kwargs)

    @staticmethod
    def _score(probabilities: Any, labels: Any) -> float:
        from sklearn.metrics import roc_auc_score

        return roc_auc_score(y_true=labels, y_score=probabilities)

    def score(self) -> None:
        self.values = {"agg": float(self._score(self.probabilities, self.labels))}


class CurveMetric(BinaryClassificationMetric):
    """``values``: for each value of ``constraint``, the best ``value`` at it."""

    constraint: tuple[str, str] = ("", "")  # (name in the metric name, property)
    value: tuple[str, str] = ("", "")
    maximize: bool = True

    def __init__(self, **kwargs: Any) -> None:
        kwargs["name"] = f"{self.constraint[0]}_{self.value[0]}_curve"
        super().__init__(**kwargs)

    def score(self) -> None:
        self.values = self.dedupe_curve(
            getattr(self, self.constraint[1]), getattr(self, self.value[1]), maximize=self.maximize
        )


#: (class name part, metric name part, property, maximize when it is the value)
_RATES = (
    ("Threshold", "threshold", "thresholds", False),
    ("Tpr", "tpr", "true_positive_rate", True),
    ("Tnr", "tnr", "true_negative_rate", True),
    ("Fnr", "fnr", "false_negative_rate", False),
    ("Fpr", "fpr", "false_positive_rate", False),
    ("Fdr", "fdr", "false_discovery_rate", False),
    ("For", "for", "false_omission_rate", False),
    ("Ppv", "ppv", "positive_predictive_value", True),
    ("Npv", "npv", "negative_predictive_value", True),
    ("PredictedPositiveRate", "predicted_positive_rate", "predicted_positive_rate", True),
    ("PredictedNegativeRate", "predicted_negative_rate", "predicted_negative_rate", True),
    ("Accuracy", "accuracy", "accuracy", True),
    ("F1Score", "f1_score", "f1", True),
    ("Mcc", "mcc", "matthews_correlation_coefficient", True),
    ("Informedness", "informedness", "informedness", True),
    ("Markedness", "markedness", "markedness", True),
)
CURVE_METRICS: list[str] = []

for _c_cls, _c_name, _c_prop, _ in _RATES[:11]:
    for _v_cls, _v_name, _v_prop, _v_max in _RATES:
        if _v_cls == _c_cls:
            continue
        # SimpleML maximizes fpr as a value except against thresholds
        _maximize = True if (_v_prop == "false_positive_rate" and _c_cls != "Threshold") else _v_max
        _name = f"{_c_cls}{_v_cls}Metric"
        globals()[_name] = type(
            _name,
            (CurveMetric,),
            {
                "constraint": (_c_name, _c_prop),
                "value": (_v_name, _v_prop),
                "maximize": _maximize,
                "__module__": __name__,
                "__qualname__": _name,
            },
        )
        CURVE_METRICS.append(_name)
