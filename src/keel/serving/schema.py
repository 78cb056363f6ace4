"""``keel api schema --from-source NAME``: an ``api:`` inputs block from a data source.

The role ML Launchpad's ``generate_raml`` played: read a sample of the source, map each
column's dtype to an input type (integers → ``integer``, floats → ``number``, booleans →
``boolean``, anything else → ``string``; a string column with few distinct, repeating values
becomes an ``enum``) and write the YAML to paste under ``api:``. Columns holding missing values
are optional inputs. The first row gives each input's example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_ENUM = 12


def input_type(series: pd.Series) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series):
        return "boolean"
    if types.is_integer_dtype(series):
        return "integer"
    if types.is_float_dtype(series):
        non_null = series.dropna()
        if len(non_null) and (non_null == non_null.round()).all() and series.isna().any():
            return "integer"  # pandas makes an int column with gaps float
        return "number"
    return "string"


def inputs_from_frame(frame: pd.DataFrame, exclude: list[str] | None = None) -> dict[str, Any]:
    """The ``inputs:`` mapping describing ``frame``'s columns."""
    from keel.data.helpers import to_plain_python

    missing = [c for c in (exclude or []) if c not in frame.columns]
    if missing:
        from keel.errors import InvalidInput

        raise InvalidInput(
            f"--exclude: no column {', '.join(map(repr, missing))}; "
            f"the columns are {', '.join(map(str, frame.columns))}"
        )
    inputs: dict[str, Any] = {}
    for column in frame.columns:
        if column in (exclude or []):
            continue
        series = frame[column]
        kind = input_type(series)
        spec: dict[str, Any] = {"type": kind}
        if series.isna().any():
            spec["required"] = False
        if kind == "string":
            values = series.dropna().astype(str).unique()
            if 0 < len(values) <= MAX_ENUM and len(values) < series.notna().sum():
                spec["enum"] = sorted(values.tolist())
        first = series.dropna()
        if len(first):
            example = to_plain_python(first.iloc[0])
            spec["example"] = int(example) if kind == "integer" else example
        inputs[str(column)] = spec
    return inputs


def api_block(name: str, resource: str, inputs: dict[str, Any]) -> str:
    """The YAML text of an ``api:`` section with one query resource."""
    import yaml

    lines = [
        "api:",
        f"  name: {name}",
        "  resources:",
        f"    - name: {resource}",
        "      kind: query",
        "      inputs:",
    ]
    for field, spec in inputs.items():
        flow = yaml.safe_dump(spec, default_flow_style=True, width=10_000, sort_keys=False).strip()
        lines.append(f"        {yaml.safe_dump(field).strip().removesuffix('...').strip()}: {flow}")
    return "\n".join(lines) + "\n"
