"""SimpleML's transformer base classes (scikit-learn transformers with seeding params)."""

from __future__ import annotations

from typing import Any

from sklearn.base import TransformerMixin as SklearnTransformerMixin


class TransformerMixin(SklearnTransformerMixin):
    """Does nothing by default: ``fit`` returns self, ``transform`` returns its input."""

    object_type: str = "TRANSFORMER"

    def reset(self) -> None:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return self

    def partial_fit(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return X

    def get_params(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def set_params(self, **kwargs: Any) -> Any:
        return self

    def get_feature_names(self, input_feature_names: list[str]) -> list[str]:
        return input_feature_names


class Transformer(TransformerMixin):
    """A transformer whose constructor keywords are its (seeding) params."""

    def __init__(self, **kwargs: Any) -> None:
        self.params: dict[str, Any] = kwargs

    def get(self, param: str) -> Any:
        return self.params.get(param)

    def get_params(self, **kwargs: Any) -> dict[str, Any]:
        return self.params

    def set_params(self, **kwargs: Any) -> Any:
        self.params.update(kwargs)
        return self
