"""``predict_proba`` for classifiers, with the pipeline applied."""

from __future__ import annotations

from typing import Any


class ClassificationMixin:
    def predict_proba(self, X: Any, transform: bool = True, **kwargs: Any) -> Any:
        import numpy as np

        self.assert_fitted(f"model {self.name!r}: fit() before predict_proba()")  # type: ignore[attr-defined]
        if transform:
            transformed = self.transform(X, **kwargs)  # type: ignore[attr-defined]
            X = transformed.X if X is None else transformed
        if X is None:
            return np.array([])
        return self.external_model.predict_proba(X)  # type: ignore[attr-defined]
