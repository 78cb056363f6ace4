"""Transformers that learn nothing from the data."""

from __future__ import annotations

from typing import Any

from keel.compat.simpleml.transformers.base_transformer import Transformer


class IdentityTransformer(Transformer):
    """Returns its input."""


class FillWithValue(Transformer):
    """``df.fillna(values)``: ``values`` is one value or a dict per column."""

    def __init__(self, values: Any) -> None:
        super().__init__(values=values)

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return X.fillna(self.get("values"))


class DataframeToRecords(Transformer):
    """A DataFrame as a list of row dicts (for a dict vectorizer)."""

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return X.to_dict(orient="records")


class DropColumns(Transformer):
    """The frame without ``columns``."""

    def __init__(self, columns: list[str]) -> None:
        super().__init__(columns=list(columns))

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return X.drop(columns=[c for c in self.get("columns") if c in X.columns])

    def get_feature_names(self, input_feature_names: list[str]) -> list[str]:
        return [c for c in input_feature_names if c not in self.get("columns")]


class KeepColumns(Transformer):
    """Only ``columns`` of the frame."""

    def __init__(self, columns: list[str]) -> None:
        super().__init__(columns=list(columns))

    def transform(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        return X[self.get("columns")]

    def get_feature_names(self, input_feature_names: list[str]) -> list[str]:
        return list(self.get("columns"))
