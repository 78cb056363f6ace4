"""Dataset splits as a pipeline sees them: the whole split, or a subset of rows by index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.compat.simpleml.datasets.dataset_splits import Split

if TYPE_CHECKING:
    from keel.compat.simpleml.datasets.base_dataset import Dataset


class ProjectedDatasetSplit:
    """Reads the dataset's split on every access (so the dataset can change underneath)."""

    def __init__(self, dataset: Dataset, split: str | None) -> None:
        self.dataset = dataset
        self.split = split

    @property
    def dataset_split(self) -> Split:
        return self.dataset.get_split(split=self.split)

    def apply_projection(self, dataset_split: Split) -> Split:
        raise NotImplementedError

    @property
    def projected_split(self) -> Split:
        return self.apply_projection(self.dataset_split)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("dataset", "split", "indices"):
            raise AttributeError(attr)
        return getattr(self.projected_split, attr)

    def __getitem__(self, item: str) -> Any:
        return self.projected_split[item]

    def keys(self) -> Any:
        return self.projected_split.keys()

    def items(self) -> Any:
        return self.projected_split.items()


class IdentityProjectedDatasetSplit(ProjectedDatasetSplit):
    def apply_projection(self, dataset_split: Split) -> Split:
        return dataset_split.squeeze()


class IndexBasedProjectedDatasetSplit(ProjectedDatasetSplit):
    """The rows whose index labels are ``indices``."""

    def __init__(self, indices: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.indices = indices

    @staticmethod
    def indexing_method(df: Any, indices: list[Any]) -> Any:
        if hasattr(df, "loc"):
            return df.loc[indices]
        return df[indices]

    def apply_projection(self, dataset_split: Split) -> Split:
        return Split(
            **{k: self.indexing_method(v, self.indices) for k, v in dataset_split.items()}
        ).squeeze()
