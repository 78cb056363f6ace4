"""scikit-learn pipelines."""

from keel.compat.simpleml.pipelines.sklearn.base import SklearnPipeline
from keel.compat.simpleml.pipelines.sklearn.external_pipeline import SklearnExternalPipeline
from keel.compat.simpleml.pipelines.sklearn.split_pipelines import (
    ExplicitSplitSklearnPipeline,
    RandomSplitSklearnPipeline,
)

__all__ = [
    "ExplicitSplitSklearnPipeline",
    "RandomSplitSklearnPipeline",
    "SklearnExternalPipeline",
    "SklearnPipeline",
]
