"""SimpleML's models: the base classes and the scikit-learn classifiers
(``from keel.compat.simpleml.models import SklearnLogisticRegression``)."""

from typing import Any

from keel.compat.simpleml.models.base_model import LibraryModel, Model
from keel.compat.simpleml.models.base_sklearn_model import SklearnModel
from keel.compat.simpleml.models.classifiers.sklearn import ESTIMATORS, SklearnClassifier

__all__ = ["LibraryModel", "Model", "SklearnClassifier", "SklearnModel", *ESTIMATORS]


def __getattr__(name: str) -> Any:
    if name in ESTIMATORS:
        from keel.compat.simpleml.models.classifiers import sklearn

        return getattr(sklearn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
