"""SimpleML's Pipeline: transformers fitted on a dataset's train split.

Saved, a pipeline is a tracked run (kind ``train``) whose artifacts hold the fitted
transformers; its model's keel model version carries it too, so a loaded model applies it.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from keel.compat.simpleml.constants import TRAIN_SPLIT
from keel.compat.simpleml.datasets.dataset_splits import Split, SplitContainer
from keel.compat.simpleml.persistables.base_persistable import Persistable
from keel.compat.simpleml.persistables.related import Related
from keel.compat.simpleml.pipelines.projected_splits import (
    IdentityProjectedDatasetSplit,
    ProjectedDatasetSplit,
)
from keel.compat.simpleml.save_patterns.decorators import ExternalArtifactDecorators
from keel.compat.simpleml.utils.errors import PipelineError
from keel.compat.simpleml.utils.signature_inspection import signature_kwargs_validator

if TYPE_CHECKING:
    from keel.compat.simpleml.datasets.base_dataset import Dataset

log = logging.getLogger("keel.compat.simpleml")


@ExternalArtifactDecorators.register_artifact(
    artifact_name="pipeline", save_attribute="external_pipeline", restore_attribute="_external_file"
)
class Pipeline(Persistable):
    """Base class of pipelines; a library subclass makes the external pipeline."""

    object_type = "PIPELINE"
    record_attributes = ("dataset_id", "params")

    def __init__(
        self,
        has_external_files: bool = True,
        transformers: list[Any] | None = None,
        fitted: bool = False,
        dataset_id: uuid.UUID | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("save_patterns", {"pipeline": ["disk_pickled"]})
        super().__init__(has_external_files=has_external_files, **kwargs)
        self._transformers = list(transformers or [])
        self._external_pipeline_init_kwargs = kwargs
        self.fitted = fitted
        self.dataset_id = dataset_id

    @property
    def fitted(self) -> bool:
        return bool(self.state.get("fitted"))

    @fitted.setter
    def fitted(self, value: bool) -> None:
        self.state["fitted"] = value

    @property
    def external_pipeline(self) -> Any:
        self.load_if_unloaded("pipeline")
        if not hasattr(self, "_external_file"):
            self._external_file = self._create_external_pipeline(
                self._transformers, **self._external_pipeline_init_kwargs
            )
            del self._transformers
            del self._external_pipeline_init_kwargs
        return self._external_file

    def _create_external_pipeline(self, transformers: list[Any], **kwargs: Any) -> Any:
        raise NotImplementedError("use a library pipeline (e.g. SklearnPipeline)")

    # --- the dataset ---------------------------------------------------------------------

    def add_dataset(self, dataset: Dataset | None) -> None:
        if dataset is None:
            return
        self.dataset_id = dataset.id
        self.dataset = dataset

    dataset = Related("DATASET", "dataset_id")

    def assert_dataset(self, msg: str = "") -> None:
        if self.dataset is None:
            raise PipelineError(msg)

    def assert_fitted(self, msg: str = "") -> None:
        if not self.fitted:
            raise PipelineError(msg)

    def add_transformer(self, name: str, transformer: Any) -> None:
        self.external_pipeline.add_transformer(name, transformer)
        self.fitted = False

    def remove_transformer(self, name: str) -> None:
        self.external_pipeline.remove_transformer(name)
        self.fitted = False

    def _hash(self) -> str:
        """The dataset, the transformers, their parameters and the pipeline config."""
        dataset = self.dataset
        if dataset is None:
            raise PipelineError(f"pipeline {self.name!r}: add_dataset() before hashing or saving")
        return self.custom_hasher(
            (
                dataset.hash_ or dataset._hash(),
                self.get_transformers(),
                self.get_params(params_only=True),
                self.config,
            )
        )

    def save(self, allow_duplication: bool | None = None) -> None:
        self.assert_dataset(f"pipeline {self.name!r}: add_dataset() before save()")
        self.assert_fitted(f"pipeline {self.name!r}: fit() before save()")
        self.params = self.get_params(params_only=True)
        self.metadata_["transformers"] = self.get_transformers()
        self.metadata_["feature_names"] = self.get_feature_names()
        if not self.get_transformers():
            self.has_external_files = False
        super().save(allow_duplication)

    def _record_in_keel(self, run: Any, files: Any, allow_duplication: bool) -> None:
        from keel.compat.simpleml import records

        dataset = self.dataset
        if dataset is not None and dataset.version is not None:
            client = records.session().client
            run.use_dataset(client.get_dataset(dataset.name, dataset.version))

    def __post_restore__(self) -> None:
        super().__post_restore__()
        if not self.has_external_files:
            self._external_file = self._create_external_pipeline([])

    # --- data ----------------------------------------------------------------------------

    def split_dataset(self) -> None:
        whole = IdentityProjectedDatasetSplit(dataset=self.dataset, split=None)  # type: ignore[arg-type]
        self._dataset_splits = SplitContainer(default_factory=lambda: whole)

    def get_dataset_split(self, split: str | None = None) -> ProjectedDatasetSplit:
        if getattr(self, "_dataset_splits", None) is None:
            self.split_dataset()
        return self._dataset_splits[split]

    def get_split_names(self) -> list[str]:
        if getattr(self, "_dataset_splits", None) is None:
            self.split_dataset()
        return list(self._dataset_splits.keys())

    def X(self, split: str | None = None) -> Any:
        return self.get_dataset_split(split=split).X

    def y(self, split: str | None = None) -> Any:
        return self.get_dataset_split(split=split).y

    def _filter_fit_params(self, split: ProjectedDatasetSplit) -> dict[str, Any]:
        return signature_kwargs_validator(self.external_pipeline.fit, **dict(split.items()))

    def fit(self) -> Pipeline:
        """Fit the transformers on the dataset's TRAIN split."""
        self.assert_dataset(f"pipeline {self.name!r}: add_dataset() before fit()")
        if self.fitted:
            log.warning("pipeline %r is already fitted: not refitting", self.name)
            return self
        split = self.get_dataset_split(split=TRAIN_SPLIT)
        self.external_pipeline.fit(**self._filter_fit_params(split))
        self.fitted = True
        return self

    def transform(self, X: Any, **kwargs: Any) -> Any:
        self.assert_fitted(f"pipeline {self.name!r}: fit() before transform()")
        return self._transform(X, **kwargs)

    def _transform(self, X: Any, dataset_split: str | None = None) -> Any:
        """``X`` transformed; with ``X=None``, the split with its ``X`` transformed."""
        if X is None:
            split = self.get_dataset_split(split=dataset_split)
            data = split.X
            empty = data is None or bool(getattr(data, "empty", False))
            output = None if empty else self.external_pipeline.transform(data)
            return Split(X=output, **{k: v for k, v in split.items() if k != "X"})
        return self.external_pipeline.transform(X)

    def fit_transform(self, **kwargs: Any) -> Any:
        self.fit()
        return self.transform(X=None, **kwargs)

    def get_params(self, **kwargs: Any) -> Any:
        return self.external_pipeline.get_params(**kwargs)

    def set_params(self, **params: Any) -> Any:
        return self.external_pipeline.set_params(**params)

    def get_transformers(self) -> list[Any]:
        return self.external_pipeline.get_transformers()

    def get_feature_names(self) -> list[str]:
        dataset = self.dataset
        initial = dataset.get_feature_names() if dataset is not None else []
        return self.external_pipeline.get_feature_names(feature_names=initial)
