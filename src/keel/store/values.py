"""How a param or tag value is kept as text: the encoding every backend shares.

Params and tags are the user's JSON values. A store keeps each as (text, JSON type name):
strings as they are, anything else as compact JSON with sorted keys. Queries compare the
text (and a float copy of numbers), so every backend must encode the same way. This module
imports nothing heavy: the SQL store, the MLflow backend and the in-Python query matcher
all use it.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["decode_value", "encode_text", "encode_value"]


def encode_text(value: Any) -> str:
    """The text form of a param or tag value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def encode_value(value: Any) -> tuple[str, str, float | None]:
    """(text, JSON type name, float copy for numbers) of a param or tag value."""
    if isinstance(value, str):
        return value, "str", None
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", None
    if value is None:
        return "null", "null", None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond ±1.8e308: kept as text, compared as none
            number = math.nan
        # NaN compares with nothing; keep the text and no number.
        return (
            encode_text(value),
            ("int" if isinstance(value, int) else "float"),
            (number if number == number else None),
        )
    try:
        return encode_text(value), "json", None
    except (TypeError, ValueError):
        return str(value), "str", None


def decode_value(text: str, kind: str) -> Any:
    """The Python value of a param or tag stored by :func:`encode_value`."""
    if kind == "str":
        return text
    return json.loads(text)
