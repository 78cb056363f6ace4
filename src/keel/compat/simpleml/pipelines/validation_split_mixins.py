"""How a pipeline splits its dataset: as the dataset says (explicit) or at random."""

from __future__ import annotations

from typing import Any

from keel.compat.simpleml.constants import TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT
from keel.compat.simpleml.datasets.dataset_splits import SplitContainer
from keel.compat.simpleml.pipelines.projected_splits import (
    IdentityProjectedDatasetSplit,
    IndexBasedProjectedDatasetSplit,
)


class SplitMixin:
    dataset: Any
    config: dict[str, Any]
    _dataset_splits: Any

    def split_dataset(self) -> None:
        raise NotImplementedError

    def containerize_split(self, split_dict: dict[str, Any]) -> SplitContainer:
        return SplitContainer(**split_dict)


class ExplicitSplitMixin(SplitMixin):
    """The dataset's own splits (its ``DATASET_SPLIT`` column), by their names."""

    def split_dataset(self) -> None:
        self._dataset_splits = self.containerize_split(
            {
                name: IdentityProjectedDatasetSplit(dataset=self.dataset, split=name)
                for name in self.dataset.get_split_names()
            }
        )


class RandomSplitMixin(SplitMixin):
    """TRAIN / VALIDATION / TEST drawn at random (scikit-learn's ``train_test_split``)."""

    def __init__(
        self,
        train_size: float | int | None = None,
        test_size: float | int | None = None,
        validation_size: float | int | None = 0.0,
        random_state: int = 123,
        shuffle: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config.update(
            {
                "train_size": train_size,
                "validation_size": validation_size,
                "test_size": test_size,
                "random_state": random_state,
                "shuffle": shuffle,
            }
        )

    @staticmethod
    def get_index(data: Any) -> list[Any]:
        index = getattr(data, "index", None)
        if index is not None:
            return list(index.tolist())
        return list(range(len(data)))

    def split_dataset(self) -> None:
        from sklearn.model_selection import train_test_split

        cfg = self.config
        index = self.get_index(self.dataset.X)
        total = len(index)

        def count(size: float | int | None) -> int | None:
            if isinstance(size, float) and 0.0 <= size <= 1.0:
                return round(size * total)
            return size

        train, validation, test = (
            count(cfg["train_size"]), count(cfg["validation_size"]), count(cfg["test_size"])
        )  # fmt: skip
        if train is None:
            train = total - (validation or 0) - (test or 0)
        if test is None:
            test = total - (validation or 0) - train
        if validation is None:
            validation = total - train - test
        shuffle, seed = cfg["shuffle"], cfg["random_state"]
        if test == 0:
            rest, test_rows = index, []
        elif test == total:
            rest, test_rows = [], index
        else:
            rest, test_rows = train_test_split(
                index, test_size=test, random_state=seed, shuffle=shuffle
            )
        if validation == 0:
            train_rows, validation_rows = rest, []
        elif validation == len(rest):
            train_rows, validation_rows = [], rest
        else:
            train_rows, validation_rows = train_test_split(
                rest, test_size=validation, random_state=seed, shuffle=shuffle
            )
        self._dataset_splits = self.containerize_split(
            {
                name: IndexBasedProjectedDatasetSplit(
                    dataset=self.dataset, split=None, indices=rows
                )
                for name, rows in (
                    (TRAIN_SPLIT, train_rows),
                    (VALIDATION_SPLIT, validation_rows),
                    (TEST_SPLIT, test_rows),
                )
            }
        )


class ChronologicalSplitMixin(SplitMixin):
    """Not provided (SimpleML did not implement it either)."""


class KFoldSplitMixin(SplitMixin):
    """Not provided (SimpleML did not implement it either)."""
