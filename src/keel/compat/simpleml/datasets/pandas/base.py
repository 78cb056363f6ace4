"""Pandas datasets: the data is a ``pandas.DataFrame``; ``X`` is every column that is not a
label (or another named section); an optional ``DATASET_SPLIT`` column names each row's split."""

from __future__ import annotations

from itertools import chain
from typing import Any

from keel.compat.simpleml.datasets.base_dataset import Dataset
from keel.compat.simpleml.datasets.dataset_splits import Split
from keel.compat.simpleml.utils.errors import DatasetError

DATAFRAME_SPLIT_COLUMN: str = "DATASET_SPLIT"


class BasePandasDataset(Dataset):
    """A dataset held as a DataFrame; ``squeeze_return`` returns one label column as a Series."""

    def __init__(self, squeeze_return: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config["squeeze_return"] = squeeze_return

    @property
    def X(self) -> Any:
        return self.get(column="X", split=None)

    @property
    def y(self) -> Any:
        return self.get(column="y", split=None)

    @property
    def _dataframe(self) -> Any:
        return self._external_file.copy()

    @_dataframe.setter
    def _dataframe(self, df: Any) -> None:
        self._external_file = df

    def _validate_dtype(self, df: Any) -> None:
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise DatasetError(
                f"dataset {self.name!r}: pandas datasets hold a pandas.DataFrame, "
                f"not {type(df).__name__}"
            )

    def get(self, column: str | None, split: str | None) -> Any:
        sections = self.config.get("split_section_map", {})
        if column is not None and column != "X" and column not in sections:
            raise DatasetError(
                f"dataset {self.name!r} has no section {column!r}: use X, None or one of "
                f"{', '.join(sorted(sections))}"
            )
        df = self.dataframe
        if column is None:
            columns = [c for c in df.columns if c != DATAFRAME_SPLIT_COLUMN]
        elif column != "X":
            columns = list(sections[column])
        else:
            others = set(chain(*sections.values()))
            columns = [c for c in df.columns if c != DATAFRAME_SPLIT_COLUMN and c not in others]
        result = self._get(df, columns, split)
        return self.squeeze_dataframe(result) if self.config.get("squeeze_return") else result

    @staticmethod
    def _get(dataframe: Any, columns: list[str], split: str | None) -> Any:
        if split is not None:
            if DATAFRAME_SPLIT_COLUMN not in dataframe.columns:
                raise DatasetError(
                    f"cannot take split {split!r}: the frame has no {DATAFRAME_SPLIT_COLUMN} column"
                )
            dataframe = dataframe[dataframe[DATAFRAME_SPLIT_COLUMN] == split]
        return dataframe[[c for c in dataframe.columns if c in columns]].copy()

    def get_split(self, split: str | None) -> Split:
        sections = self.config.get("split_section_map", {})
        return Split(
            X=self.get(column="X", split=split),
            **{section: self.get(column=section, split=split) for section in sections},
        ).squeeze()

    def get_split_names(self) -> list[str]:
        df = self.dataframe
        if DATAFRAME_SPLIT_COLUMN in df.columns:
            return df[DATAFRAME_SPLIT_COLUMN].unique().tolist()
        return []

    def get_feature_names(self) -> list[str]:
        return self._x_columns()

    def _x_columns(self) -> list[str]:
        sections = self.config.get("split_section_map", {})
        others = set(chain(*sections.values()))
        return [
            c for c in self.dataframe.columns if c != DATAFRAME_SPLIT_COLUMN and c not in others
        ]

    @staticmethod
    def concatenate_dataframes(dataframes: list[Any], split_names: list[str]) -> Any:
        import pandas as pd

        for df, name in zip(dataframes, split_names, strict=True):
            df[DATAFRAME_SPLIT_COLUMN] = name
        return pd.concat(dataframes, axis=0, ignore_index=True)

    @staticmethod
    def merge_split(split: Split) -> Any:
        import pandas as pd

        return pd.concat(list(split.values()), axis=1)

    @staticmethod
    def squeeze_dataframe(df: Any) -> Any:
        return df.squeeze(axis=1)
