"""scikit-learn's Pipeline with SimpleML's extra verbs."""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline as _SklearnPipeline


class SklearnExternalPipeline(_SklearnPipeline):
    """A scikit-learn pipeline that adds/removes steps and reports feature names."""

    def add_transformer(self, name: str, transformer: Any, index: int | None = None) -> None:
        if index is None:
            self.steps.append((name, transformer))
        else:
            self.steps.insert(index, (name, transformer))

    def remove_transformer(self, name: str) -> None:
        self.steps[:] = [step for step in self.steps if step[0] != name]

    def get_params(self, params_only: bool = False, **kwargs: Any) -> dict[str, Any]:
        params = super().get_params(**kwargs)
        if params_only:
            steps = params.pop("steps", [])
            names = {step[0] for step in steps}
            return {k: v for k, v in params.items() if k not in names}
        return params

    def get_transformers(self) -> list[tuple[str, str]]:
        return [(name, type(step).__name__) for name, step in self.steps]

    def get_feature_names(self, feature_names: list[str]) -> list[str]:
        for _name, step in self.steps:
            names = getattr(step, "get_feature_names", None)
            if callable(names):
                feature_names = names(feature_names)
            elif hasattr(step, "get_feature_names_out"):
                feature_names = list(step.get_feature_names_out())
        return list(feature_names)
