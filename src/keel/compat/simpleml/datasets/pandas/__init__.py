"""Pandas datasets: from a file, from a DataFrame, or made by a dataset pipeline."""

from keel.compat.simpleml.datasets.pandas.base import BasePandasDataset
from keel.compat.simpleml.datasets.pandas.file_based import (
    PandasDataFrameDataset,
    PandasFileBasedDataset,
)
from keel.compat.simpleml.datasets.pandas.pipeline import PandasPipelineDataset

__all__ = [
    "BasePandasDataset",
    "PandasDataFrameDataset",
    "PandasFileBasedDataset",
    "PandasPipelineDataset",
]
