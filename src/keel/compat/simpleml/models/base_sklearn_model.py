"""Models made of a scikit-learn estimator, fitted on the pipeline's TRAIN split."""

from __future__ import annotations

from keel.compat.simpleml.constants import TRAIN_SPLIT
from keel.compat.simpleml.models.base_model import LibraryModel
from keel.compat.simpleml.utils.signature_inspection import signature_kwargs_validator


class SklearnModel(LibraryModel):
    def _fit(self) -> None:
        split = self.transform(X=None, dataset_split=TRAIN_SPLIT)
        self.external_model.fit(**signature_kwargs_validator(self.external_model.fit, **split))
