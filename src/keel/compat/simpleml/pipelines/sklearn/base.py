"""Pipelines made of a scikit-learn Pipeline."""

from __future__ import annotations

import logging
from typing import Any

from keel.compat.simpleml.pipelines.base_pipeline import Pipeline
from keel.compat.simpleml.pipelines.projected_splits import ProjectedDatasetSplit
from keel.compat.simpleml.pipelines.sklearn.external_pipeline import SklearnExternalPipeline
from keel.compat.simpleml.utils.signature_inspection import signature_kwargs_validator

log = logging.getLogger("keel.compat.simpleml")


class SklearnPipeline(Pipeline):
    """A scikit-learn ``Pipeline`` of the given ``(name, transformer)`` steps."""

    def _create_external_pipeline(
        self, transformers: list[Any], **kwargs: Any
    ) -> SklearnExternalPipeline:
        supported = signature_kwargs_validator(SklearnExternalPipeline.__init__, **kwargs)
        supported.pop("steps", None)
        if not transformers:
            from keel.compat.simpleml.transformers import IdentityTransformer

            transformers = [("identity", IdentityTransformer())]
        return SklearnExternalPipeline(list(transformers), **supported)

    def _filter_fit_params(self, split: ProjectedDatasetSplit) -> dict[str, Any]:
        """``X``, ``y`` and ``step__param`` fit parameters; others are dropped with a warning."""
        import inspect

        accepted = inspect.signature(self.external_pipeline.fit).parameters
        params: dict[str, Any] = {}
        for key, value in split.items():
            if key in accepted or "__" in key:
                params[key] = value
            else:
                log.warning("pipeline %r: fit takes no %r: dropped", self.name, key)
        return params
