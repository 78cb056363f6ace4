"""Invocation records as rows: the flat input columns and output fields that profiles sketch.

An input is a JSON object (one row) or a list of objects (a batch call: one row each);
nested objects are flattened with dots (``{"a": {"b": 1}}`` → ``a.b``). A result is flattened
the same way, row by row where the input was a batch of the same length; a scalar result is
the output field ``result``. Lists of scalars are left out of profiles (they are not one
feature).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: the output field of a result that is a single value
RESULT = "result"
#: statuses that count as errors in a window's error rate
OK_STATUSES = frozenset({"ok", "success", "200"})


#: value types kept as they are (what JSON decodes to), without a look inside
_PLAIN = frozenset({str, int, float, bool, type(None)})


def flatten(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` → ``{"a.b": 1, "c": 2}`` (lists of scalars dropped)."""
    out = {} if out is None else out
    if type(value) is dict or isinstance(value, Mapping):
        # one level at a time, plain values first: most records are flat, and this runs in
        # the record writer of a busy server for every call
        for key, item in value.items():
            kind = type(item)
            if kind in _PLAIN:
                out[key if not prefix and type(key) is str else f"{prefix}{key}"] = item
            elif kind is not list:
                flatten(item, f"{prefix}{key}.", out)
        return out
    if isinstance(value, list):
        return out  # not one feature
    name = prefix[:-1] if prefix.endswith(".") else prefix
    out[name or RESULT] = value
    return out


def rows_of(input_: Any, result: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (input row, output row) pairs of one record."""
    if isinstance(input_, list) and input_ and all(isinstance(r, Mapping) for r in input_):
        results = result if isinstance(result, list) and len(result) == len(input_) else None
        return [
            (flatten(row), _outputs(None if results is None else results[i]))
            for i, row in enumerate(input_)
        ]
    if isinstance(input_, Mapping):
        return [(flatten(input_), _outputs(result))]
    return []


def _outputs(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, Mapping):
        return flatten(result)
    if isinstance(result, list):
        return {}
    return {RESULT: result}


def columns_of(
    records: Iterable[Any],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], int]:
    """The input and output columns (name → one value per row, None where a row lacks it)
    of the successful records, and the number of rows: what live profiles fold, without a
    DataFrame per batch."""
    rows_in: list[dict[str, Any]] = []
    rows_out: list[dict[str, Any]] = []
    for record in records:
        status = record.status
        if status != "ok" and str(status).lower() not in OK_STATUSES:
            continue
        for row_in, row_out in rows_of(record.input, record.result):
            rows_in.append(row_in)
            rows_out.append(row_out)
    return _columns(rows_in), _columns(rows_out), len(rows_in)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for row in rows:  # the union of the rows' keys, in order of first sight
        if not row.keys() <= names.keys():
            names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


def outputs_frame(results: Any) -> Any:
    """The output fields of a batch of results (``predict_batch``'s list, or its frame)."""
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results.reset_index(drop=True)
    if isinstance(results, pd.Series):
        return pd.DataFrame({RESULT: results.to_numpy()})
    return pd.DataFrame.from_records([_outputs(r) for r in list(results)])
