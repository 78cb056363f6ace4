"""Pandas datasets made by a dataset pipeline (its output for every split)."""

from __future__ import annotations

from keel.compat.simpleml.datasets.pandas.base import BasePandasDataset
from keel.compat.simpleml.utils.errors import DatasetError


class PandasPipelineDataset(BasePandasDataset):
    """``build_dataframe()`` runs the linked pipeline over each of its splits."""

    def build_dataframe(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            raise DatasetError(f"dataset {self.name!r}: add_pipeline() before build_dataframe()")
        names = pipeline.get_split_names()
        merged = [self.merge_split(pipeline.transform(X=None, dataset_split=n)) for n in names]
        if len(merged) > 1:
            self.dataframe = self.concatenate_dataframes(merged, names)
        else:
            self.dataframe = merged[0]
