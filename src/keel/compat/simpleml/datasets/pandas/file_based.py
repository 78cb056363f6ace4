"""Pandas datasets read from a file (csv, json, parquet)."""

from __future__ import annotations

from typing import Any

from keel.compat.simpleml.datasets.pandas.base import BasePandasDataset
from keel.compat.simpleml.utils.errors import DatasetError

PANDAS_READERS = {"csv": "read_csv", "json": "read_json", "parquet": "read_parquet"}


class PandasFileBasedDataset(BasePandasDataset):
    """``build_dataframe()`` reads ``filepath`` with pandas' reader for ``format``."""

    def __init__(
        self, filepath: str, format: str, reader_params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if format not in PANDAS_READERS:
            raise DatasetError(
                f"no reader for file format {format!r}: use one of {', '.join(PANDAS_READERS)}"
            )
        self.config.update(
            {"filepath": str(filepath), "format": format, "reader_params": reader_params or {}}
        )

    def build_dataframe(self) -> None:
        import pandas as pd

        reader = getattr(pd, PANDAS_READERS[self.config["format"]])
        try:
            self.dataframe = reader(self.config["filepath"], **self.config.get("reader_params", {}))
        except FileNotFoundError:
            raise DatasetError(
                f"dataset {self.name!r}: {self.config['filepath']} does not exist (filepath is "
                "read relative to the working folder)"
            ) from None


class PandasDataFrameDataset(BasePandasDataset):
    """A dataset from a DataFrame in hand: ``PandasDataFrameDataset(dataframe=df, ...)``, or
    set ``dataset.dataframe = df`` before saving."""

    def __init__(self, dataframe: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dataframe is not None:
            self.dataframe = dataframe

    def build_dataframe(self) -> None:
        if getattr(self, "_external_file", None) is None:
            raise DatasetError(
                f"dataset {self.name!r} has no data: pass dataframe= or set dataset.dataframe"
            )
