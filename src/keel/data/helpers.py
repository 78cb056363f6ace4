"""Helpers model code relies on: reproducible column order and plain JSON-able values."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from keel.errors import InvalidInput


def order_columns(obj: Any) -> Any:
    """``obj`` with its columns (keys, fields) in lexicographic order.

    Takes a pandas DataFrame, a dict or a numpy structured array. Use it on training data and
    on prediction input alike, so a model always sees its features in the same order.
    """
    if isinstance(obj, dict):
        return {key: obj[key] for key in sorted(obj)}
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj[sorted(obj.columns)]
    if isinstance(obj, np.ndarray) and obj.dtype.names is not None:
        return obj[sorted(obj.dtype.names)]
    raise InvalidInput(
        "order_columns takes a pandas DataFrame, a dict or a numpy structured array, "
        f"got {type(obj).__name__}"
    )


def to_plain_python(obj: Any) -> Any:
    """``obj`` as plain JSON-able Python (dict, list, str, int, float, bool, None).

    numpy scalars and arrays, pandas Series (→ list), DataFrames (→ list of row dicts),
    Timestamps and datetimes (→ ISO 8601 text), Timedeltas (→ seconds), Decimals (→ float),
    sets and tuples (→ lists). Missing values (NaN, NaT, ``pd.NA``, None) become None, so the
    result passes ``json.dumps(..., allow_nan=False)``; ±inf stay floats.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # numpy's float64 is a float subclass: make it a plain float
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, dict):
        return {str(k): to_plain_python(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [to_plain_python(v) for v in items]
    if isinstance(obj, decimal.Decimal):
        return None if obj.is_nan() else float(obj)
    if type(obj).__name__ == "NaTType":  # pandas' NaT passes for a datetime
        return None
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    return _from_numpy_or_pandas(obj)


def _from_numpy_or_pandas(obj: Any) -> Any:
    import numpy as np
    import pandas as pd

    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, pd.DataFrame):
        return [to_plain_python(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series | pd.Index):
        return [to_plain_python(v) for v in obj.tolist()]
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, pd.Timedelta):
        return obj.total_seconds()
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else pd.Timestamp(obj).isoformat()
    if isinstance(obj, np.timedelta64):
        return None if np.isnat(obj) else pd.Timedelta(obj).total_seconds()
    if isinstance(obj, np.ndarray):
        # tolist() would turn datetime64[ns] into bare integers: convert those item by item.
        items = list(obj) if obj.dtype.kind in "mM" else obj.tolist()
        return [to_plain_python(v) for v in items]
    if isinstance(obj, np.generic):
        return to_plain_python(obj.item())
    raise InvalidInput(f"cannot turn a {type(obj).__name__} into plain JSON-able Python")
