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
    if isinstance(value, Mapping):
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
