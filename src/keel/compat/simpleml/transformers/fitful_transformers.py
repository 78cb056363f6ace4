"""Transformers fitted on the training data."""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction import DictVectorizer

from keel.compat.simpleml.transformers.base_transformer import TransformerMixin


class SklearnDictVectorizer(DictVectorizer, TransformerMixin):  # type: ignore[misc]
    """scikit-learn's DictVectorizer (text values one-hot encoded); dense by default."""

    def __init__(
        self, dtype: Any = float, separator: str = "=", sparse: bool = False, sort: bool = True
    ) -> None:
        super().__init__(dtype=dtype, separator=separator, sparse=sparse, sort=sort)

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return DictVectorizer.fit(self, X, y)

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return DictVectorizer.transform(self, X)

    def get_params(self, deep: bool = True, **kwargs: Any) -> dict[str, Any]:
        return DictVectorizer.get_params(self, deep=deep)

    def set_params(self, **params: Any) -> Any:
        return DictVectorizer.set_params(self, **params)

    def get_feature_names(self, input_feature_names: list[str] | None = None) -> list[str]:
        return [str(name) for name in self.get_feature_names_out()]
