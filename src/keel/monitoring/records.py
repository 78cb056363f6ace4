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


def flatten(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` → ``{"a.b": 1, "c": 2}`` (lists of scalars dropped)."""
    out = {} if out is None else out
    if type(value) is dict or isinstance(value, Mapping):
        for key, item in value.items():
            flatten(item, f"{prefix}{key}.", out)
        return out
    name = prefix[:-1] if prefix.endswith(".") else prefix
    if isinstance(value, list):
        return out  # not one feature
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
    inputs: dict[str, list[Any]] = {}
    outputs: dict[str, list[Any]] = {}
    n = 0
    for record in records:
        if str(record.status).lower() not in OK_STATUSES:
            continue
        for row_in, row_out in rows_of(record.input, record.result):
            for columns, row in ((inputs, row_in), (outputs, row_out)):
                for key, value in row.items():
                    column = columns.get(key)
                    if column is None:
                        column = columns[key] = [None] * n
                    elif len(column) < n:
                        column.extend([None] * (n - len(column)))
                    column.append(value)
            n += 1
    for columns in (inputs, outputs):
        for column in columns.values():
            if len(column) < n:
                column.extend([None] * (n - len(column)))
    return inputs, outputs, n


def frames_of(records: Iterable[Any]) -> tuple[Any, Any]:
    """The input and output frames of invocation records (successful calls only: a failed
    call has no output, and its input is often what made it fail)."""
    import pandas as pd

    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for record in records:
        if str(record.status).lower() not in OK_STATUSES:
            continue
        for row_in, row_out in rows_of(record.input, record.result):
            inputs.append(row_in)
            outputs.append(row_out)
    return pd.DataFrame.from_records(inputs), pd.DataFrame.from_records(outputs)


def outputs_frame(results: Any) -> Any:
    """The output fields of a batch of results (``predict_batch``'s list, or its frame)."""
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results.reset_index(drop=True)
    if isinstance(results, pd.Series):
        return pd.DataFrame({RESULT: results.to_numpy()})
    return pd.DataFrame.from_records([_outputs(r) for r in list(results)])
