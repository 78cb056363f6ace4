"""SimpleML's Metric: a score of a model (on a dataset).

Saved, a metric is a tracked run (kind ``retest``) and, when it is one number (``values
["agg"]``), a metric of its model's keel version under the metric's name.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from keel.compat.simpleml.persistables.base_persistable import Persistable
from keel.compat.simpleml.persistables.related import Related
from keel.compat.simpleml.utils.errors import MetricError

if TYPE_CHECKING:
    from keel.compat.simpleml.datasets.base_dataset import Dataset
    from keel.compat.simpleml.models.base_model import Model

log = logging.getLogger("keel.compat.simpleml")


class Metric(Persistable):
    """Base class of metrics; ``score()`` sets ``values``."""

    object_type = "METRIC"
    record_attributes = ("dataset_id", "model_id", "values")

    def __init__(
        self,
        dataset_id: uuid.UUID | str | None = None,
        model_id: uuid.UUID | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.model_id = model_id
        self.values: dict[str, Any] | None = None

    def add_dataset(self, dataset: Dataset | None) -> None:
        if dataset is None:
            return
        self.dataset_id = dataset.id
        self.dataset = dataset

    dataset = Related("DATASET", "dataset_id")

    def add_model(self, model: Model | None) -> None:
        if model is None:
            return
        self.model_id = model.id
        self.model = model

    model = Related("MODEL", "model_id")

    def _hash(self) -> str:
        """The model, the dataset, the metric's class and its config."""
        model = self.model
        if model is None:
            raise MetricError(f"metric {self.name!r}: add_model() before hashing or saving")
        dataset = self.dataset
        return self.custom_hasher(
            (
                model.hash_ or model._hash(),
                None if dataset is None else (dataset.hash_ or dataset._hash()),
                type(self).__name__,
                self.config,
            )
        )

    def _get_pipeline_split(self, column: str, split: str | None, **kwargs: Any) -> Any:
        return getattr(self.model.pipeline.get_dataset_split(split=split, **kwargs), column)  # type: ignore[union-attr]

    def _get_dataset_split(self, **kwargs: Any) -> Any:
        return self.dataset.get(**kwargs)  # type: ignore[union-attr]

    def save(self, allow_duplication: bool | None = None) -> None:
        if self.model is None:
            raise MetricError(f"metric {self.name!r}: add_model() before save()")
        if self.values is None:
            raise MetricError(f"metric {self.name!r}: score() before save()")
        super().save(allow_duplication)

    def _record_in_keel(self, run: Any, files: Any, allow_duplication: bool) -> None:
        from keel.compat.simpleml import records

        model = self.model
        aggregate = (self.values or {}).get("agg")
        if model is None or not isinstance(aggregate, (int, float)):
            return
        run.log_metrics({self.name: float(aggregate)})
        client = records.session().client
        if model.version is not None:
            client.update_model_version_metrics(
                f"{model.name}@{model.version}", {self.name: float(aggregate)}
            )

    def score(self, **kwargs: Any) -> None:
        raise NotImplementedError
