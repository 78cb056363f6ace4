"""SimpleML's pipelines (``keel.compat.simpleml.pipelines.sklearn`` for scikit-learn)."""

from keel.compat.simpleml.pipelines.base_pipeline import Pipeline

__all__ = ["Pipeline"]
