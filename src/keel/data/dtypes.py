"""The dtype sidecar of CSV sinks and sources (``dtypes_path``).

A CSV file loses its column types: dates come back as text, ``"007"`` as 7, a categorical as
strings. A sink with ``dtypes_path`` writes the dtypes of its frame beside the CSV; a source
with the same ``dtypes_path`` reads them and enforces them, so a frame survives the round
trip with the same dtypes (datetimes with their unit and time zone, timedeltas, nullable
types and categoricals with their categories and order included).

The file is JSON: ``{"format": "keel.dtypes/1", "columns": [{"name": …, "dtype": …}, …]}``;
categorical columns add ``categories``, ``categories_dtype`` and ``ordered``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "keel.dtypes/1"
# Read as text, then converted by enforce_dtypes.
_CONVERTED = ("datetime64", "timedelta64", "category")


def dtypes_of(df: pd.DataFrame) -> dict[str, Any]:
    """The JSON-able dtype description of ``df``'s columns, in column order."""
    import pandas as pd

    from keel.data.helpers import to_plain_python

    columns = []
    for name, dtype in df.dtypes.items():
        entry: dict[str, Any] = {"name": str(name), "dtype": str(dtype)}
        if isinstance(dtype, pd.CategoricalDtype):
            entry["categories"] = to_plain_python(list(dtype.categories))
            entry["categories_dtype"] = str(dtype.categories.dtype)
            entry["ordered"] = bool(dtype.ordered)
        columns.append(entry)
    return {"format": FORMAT, "columns": columns}


def write_dtypes(
    df: pd.DataFrame, path: str, storage_options: dict[str, Any] | None = None
) -> None:
    """Write the dtypes of ``df`` to ``path`` atomically (local temp + rename, or one PUT)."""
    payload = json.dumps(dtypes_of(df), indent=2).encode("utf-8")
    if "://" in path:
        import fsspec

        fs, target = fsspec.core.url_to_fs(path, **(storage_options or {}))
        fs.pipe_file(target, payload)
        return
    from pathlib import Path

    from keel.data.files import write_local_atomic

    write_local_atomic(Path(path), lambda handle: handle.write(payload))


def read_dtypes(path: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dtype description at ``path``."""
    import fsspec

    try:
        with fsspec.open(path, "rb", **(storage_options or {})) as handle:
            text = handle.read()
    except FileNotFoundError:
        message = f"dtypes file {path} not found (written by a csv sink's dtypes_path)"
        raise NotFound(message) from None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"dtypes file {path} is not valid JSON: {exc}") from None
    if (
        not isinstance(spec, dict)
        or spec.get("format") != FORMAT
        or not isinstance(spec.get("columns"), list)
        or not all(isinstance(c, dict) and "name" in c and "dtype" in c for c in spec["columns"])
    ):
        raise ConfigError(
            f"dtypes file {path} is not a keel dtypes file (expected format {FORMAT} "
            "with a list of columns, each with name and dtype)"
        )
    return spec


def read_csv_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """``pandas.read_csv`` arguments that read each column straight into its dtype."""
    dtype: dict[str, str] = {}
    for column in spec["columns"]:
        kind = column["dtype"]
        if kind == "category":
            if column.get("categories_dtype") in ("object", "str", "string"):
                dtype[column["name"]] = "str"
        elif not kind.startswith(_CONVERTED):
            dtype[column["name"]] = kind
    return {"dtype": dtype} if dtype else {}


def enforce_dtypes(df: pd.DataFrame, spec: dict[str, Any], where: str) -> pd.DataFrame:
    """``df`` with every column of ``spec`` in its recorded dtype."""
    missing = [c["name"] for c in spec["columns"] if c["name"] not in df.columns]
    if missing:
        raise InvalidInput(
            f"{where}: column(s) {', '.join(missing)} of the dtypes file are not in the data"
        )
    converted = {}
    for column in spec["columns"]:
        name, kind = column["name"], column["dtype"]
        series = df[name]
        if kind != "category" and str(series.dtype) == kind:
            continue
        try:
            converted[name] = _convert(series, column)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"{where}: column {name!r} cannot be read as {kind}: {exc}"
            ) from None
    if not converted:
        return df
    df = df.copy(deep=False)
    for name, series in converted.items():
        df[name] = series
    return df


def _convert(series: pd.Series, column: dict[str, Any]) -> pd.Series:
    import pandas as pd

    kind = column["dtype"]
    if kind == "category":
        categories = pd.Index(column["categories"], dtype=column["categories_dtype"])
        wanted = pd.CategoricalDtype(categories, ordered=column.get("ordered", False))
        values = series if series.dtype == categories.dtype else _like(series, categories)
        unknown = int((~(values.isin(categories) | values.isna())).sum())
        if unknown:
            raise ValueError(f"{unknown} value(s) are not among its categories")
        return pd.Series(pd.Categorical(values, dtype=wanted), index=series.index, name=series.name)
    if kind.startswith("datetime64") and "," in kind:
        tz = kind[kind.index(",") + 1 : -1].strip()
        return pd.to_datetime(series, utc=True).dt.tz_convert(tz).astype(kind)
    if kind.startswith("datetime64"):
        return pd.to_datetime(series).astype(kind)
    if kind.startswith("timedelta64"):
        return pd.to_timedelta(series).astype(kind)
    return series.astype(kind)


def _like(series: pd.Series, categories: pd.Index) -> pd.Series:
    """``series`` in the dtype of ``categories`` (ints read as floats because of NaN…)."""
    if categories.dtype.kind in "iu" and series.dtype.kind == "f":
        return series.astype("Int64")
    if categories.dtype.kind == "b" and series.dtype.kind in "O":
        return series.map({"True": True, "False": False, True: True, False: False})
    if categories.dtype.kind in "iufb":
        return series
    return series.astype("str")
