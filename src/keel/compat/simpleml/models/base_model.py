"""SimpleML's Model: an estimator fitted on its pipeline's output.

Saved, a model is a keel model version of its name (SimpleML's version is keel's), holding
the fitted pipeline and estimator so that ``keel.load_model`` and ``keel serve`` predict
with the pipeline applied; its tags name the pipeline and dataset it came from.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from keel.compat.simpleml.persistables.base_persistable import Persistable
from keel.compat.simpleml.persistables.related import Related
from keel.compat.simpleml.pipelines.base_pipeline import Pipeline
from keel.compat.simpleml.save_patterns.decorators import ExternalArtifactDecorators
from keel.compat.simpleml.utils.errors import ModelError

log = logging.getLogger("keel.compat.simpleml")


@ExternalArtifactDecorators.register_artifact(
    artifact_name="model", save_attribute="external_model", restore_attribute="_external_file"
)
class Model(Persistable):
    """Base class of models; a library subclass makes the external model."""

    object_type = "MODEL"
    record_attributes = ("pipeline_id", "params", "feature_metadata")

    def __init__(
        self,
        has_external_files: bool = True,
        external_model_kwargs: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        fitted: bool = False,
        pipeline_id: uuid.UUID | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("save_patterns", {"model": ["disk_pickled"]})
        super().__init__(has_external_files=has_external_files, **kwargs)
        self._external_model_init_kwargs = dict(external_model_kwargs or {})
        if params is not None:
            self.set_params(**params)
        self.fitted = fitted
        self.pipeline_id = pipeline_id

    @property
    def fitted(self) -> bool:
        return bool(self.state.get("fitted"))

    @fitted.setter
    def fitted(self, value: bool) -> None:
        self.state["fitted"] = value

    @property
    def external_model(self) -> Any:
        self.load_if_unloaded("model")
        if not hasattr(self, "_external_file"):
            self._external_file = self._create_external_model(**self._external_model_init_kwargs)
            del self._external_model_init_kwargs
        return self._external_file

    def _create_external_model(self, **kwargs: Any) -> Any:
        raise NotImplementedError("use a library model (e.g. SklearnLogisticRegression)")

    # --- the pipeline --------------------------------------------------------------------

    def add_pipeline(self, pipeline: Pipeline | None) -> None:
        if pipeline is None:
            return
        self.pipeline_id = pipeline.id
        self.pipeline = pipeline

    pipeline = Related("PIPELINE", "pipeline_id")

    def assert_pipeline(self, msg: str = "") -> None:
        if self.pipeline is None or not self.pipeline.fitted:
            raise ModelError(msg)

    def assert_fitted(self, msg: str = "") -> None:
        if not self.fitted:
            raise ModelError(msg)

    def _hash(self) -> str:
        """The pipeline, the estimator's class and params, and the config."""
        pipeline = self.pipeline
        if pipeline is None:
            raise ModelError(f"model {self.name!r}: add_pipeline() before hashing or saving")
        return self.custom_hasher(
            (
                pipeline.hash_ or pipeline._hash(),
                type(self.external_model).__name__,
                self.get_params(),
                self.config,
            )
        )

    def save(self, allow_duplication: bool | None = None) -> None:
        self.assert_pipeline(f"model {self.name!r}: add a fitted pipeline before save()")
        self.assert_fitted(f"model {self.name!r}: fit() before save()")
        self.params = self.get_params()
        self.feature_metadata = self.get_feature_metadata()
        super().save(allow_duplication)

    def _record_in_keel(self, run: Any, files: Any, allow_duplication: bool) -> None:
        from keel.compat.simpleml.adapter import register_model_version

        self.version = register_model_version(self, run).version

    # --- fitting and predicting ----------------------------------------------------------

    def fit(self, **kwargs: Any) -> Model:
        self.assert_pipeline(f"model {self.name!r}: add a fitted pipeline before fit()")
        if self.fitted:
            log.warning("model %r is already fitted: not refitting", self.name)
            return self
        if kwargs:
            log.warning(
                "model %r: fit() takes no parameters (set them in the constructor)", self.name
            )
        self._fit()
        self.fitted = True
        return self

    def _fit(self) -> None:
        raise NotImplementedError

    def transform(self, *args: Any, **kwargs: Any) -> Any:
        return self.pipeline.transform(*args, **kwargs)  # type: ignore[union-attr]

    def _predict(self, X: Any, **kwargs: Any) -> Any:
        return self.external_model.predict(X)

    def predict(self, X: Any, transform: bool = True, **kwargs: Any) -> Any:
        """Predictions for ``X`` (run through the pipeline first unless ``transform=False``;
        ``X=None`` predicts the pipeline's dataset split ``dataset_split=``)."""
        import numpy as np

        self.assert_fitted(f"model {self.name!r}: fit() before predict()")
        if transform:
            transformed = self.transform(X, **kwargs)
            X = transformed.X if X is None else transformed
        if X is None:
            return np.array([])
        return self._predict(X, **kwargs)

    def fit_predict(self, **kwargs: Any) -> Any:
        self.fit()
        return self.predict(X=None, **kwargs)

    def get_labels(self, dataset_split: str | None = None) -> Any:
        return self.pipeline.y(split=dataset_split)  # type: ignore[union-attr]

    def get_params(self, **kwargs: Any) -> Any:
        return self.external_model.get_params(**kwargs)

    def set_params(self, **params: Any) -> Any:
        return self.external_model.set_params(**params)

    def score(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return self.external_model.score(X, y, **kwargs)

    def get_feature_metadata(self, **kwargs: Any) -> Any:
        """Coefficients or feature importances by feature name, when the estimator has them."""
        import numpy as np

        estimator = self.external_model
        values = getattr(estimator, "coef_", None)
        if values is None:
            values = getattr(estimator, "feature_importances_", None)
        if values is None:
            return None
        values = np.asarray(values).squeeze()
        if values.ndim != 1:
            return None
        names: list[Any] = list(self.pipeline.get_feature_names()) if self.pipeline else []
        if len(names) < len(values):
            names = list(range(len(values)))
        return {str(k): float(v) for k, v in zip(names, values, strict=False)}


class LibraryModel(Model):
    """A model of one library (SimpleML's in-between class)."""
