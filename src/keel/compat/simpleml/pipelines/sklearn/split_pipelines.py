"""scikit-learn pipelines that split their dataset at random or as the dataset says."""

from __future__ import annotations

from keel.compat.simpleml.pipelines.sklearn.base import SklearnPipeline
from keel.compat.simpleml.pipelines.validation_split_mixins import (
    ExplicitSplitMixin,
    RandomSplitMixin,
)


class RandomSplitSklearnPipeline(RandomSplitMixin, SklearnPipeline):
    """Random TRAIN/VALIDATION/TEST rows (``train_size``, ``validation_size``, ``test_size``)."""


class ExplicitSplitSklearnPipeline(ExplicitSplitMixin, SklearnPipeline):
    """The dataset's own splits (its ``DATASET_SPLIT`` column)."""
