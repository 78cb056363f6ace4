"""How a param or tag value is kept as text: the encoding every backend shares.

Params and tags are the user's JSON values. A store keeps each as (text, type name, float
copy): strings as they are (``str``), numbers, booleans and null as JSON (``int``,
``float``, ``bool``, ``null``), lists and dicts as compact JSON with sorted keys (``json``).
Queries compare the text, the float copy and, inside lists and dicts, the JSON itself
(:mod:`keel.store.jsonsql`), so every backend must encode the same way. This module
imports nothing heavy: the SQL store, the MLflow backend and the in-Python query matcher
all use it.

Two values need a convention, because JSON has no spelling for them:

* a ``datetime`` is kept as ``{"$date": "2024-04-01T09:00:00.000000"}`` (naive) or
  ``{"$date": "2024-04-01T09:00:00.000000+00:00"}`` (aware, converted to UTC), alone or
  anywhere inside a list or dict, and comes back as a ``datetime`` (naive or UTC-aware, as
  it was logged). The ISO text has a fixed width, so its first 26 characters order as the
  instants do (a naive datetime is taken as UTC, as MongoDB's drivers take it). The same
  object is the datetime's wire form (:mod:`keel.store.codec`), so a dict holding the key
  ``"$date"`` is refused unless it is exactly such a datetime;
* a list or dict holding a NaN or an infinity is kept as Python's ``json`` writes it
  (``NaN``, ``Infinity``), under the type ``jsonx``: it comes back whole and equals the same
  value, but queries do not reach inside it (neither SQLite nor PostgreSQL parses those
  words as JSON).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keel.errors import InvalidInput

__all__ = [
    "DATE_KEY",
    "date_text",
    "decode_value",
    "encode_text",
    "encode_value",
    "parse_date",
    "stored_form",
]

#: the key of the one-key object that stands for a datetime
DATE_KEY = "$date"
#: the width of the ISO text that orders datetimes (``YYYY-MM-DDTHH:MM:SS.ffffff``)
DATE_WIDTH = 26


def date_text(value: datetime) -> str:
    """The fixed-width ISO text of a datetime: naive as it is, aware in UTC with ``+00:00``."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value.replace(tzinfo=None).isoformat(timespec="microseconds")


def parse_date(text: Any) -> datetime:
    """The datetime of a ``{"$date": text}`` object, or InvalidInput."""
    if isinstance(text, str) and len(text) >= DATE_WIDTH:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return value if value.tzinfo is None else value.astimezone(UTC)
    raise InvalidInput(
        f"{{{DATE_KEY!r}: {text!r}}} is not a datetime: the key {DATE_KEY!r} is kept for "
        "datetimes written as 'YYYY-MM-DDTHH:MM:SS.ffffff[+00:00]'"
    )


def stored_form(value: Any) -> Any:
    """``value`` with every datetime (and ``{"$date": …}`` object) as its canonical
    ``{"$date": text}`` object; tuples become lists. Other values are left as they are."""
    if isinstance(value, datetime):
        return {DATE_KEY: date_text(value)}
    if isinstance(value, Mapping):
        if DATE_KEY in value:
            if len(value) != 1:
                raise InvalidInput(
                    f"a dict holding the key {DATE_KEY!r} must hold nothing else: the key is "
                    "kept for datetimes"
                )
            return {DATE_KEY: date_text(parse_date(value[DATE_KEY]))}
        return {k: stored_form(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stored_form(v) for v in value]
    return value


def encode_text(value: Any) -> str:
    """The text form of a param or tag value: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(stored_form(value), sort_keys=True, separators=(",", ":"), allow_nan=True)


def encode_value(value: Any) -> tuple[str, str, float | None]:
    """(text, type name, float copy for numbers) of a param or tag value."""
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
    form = stored_form(value)
    try:
        text = json.dumps(form, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or ±inf inside: kept whole, not reached into by queries
        try:
            return encode_text(form), "jsonx", None
        except (TypeError, ValueError):
            return str(value), "str", None
    except TypeError:
        return str(value), "str", None
    return text, "json", None


def _dates(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and DATE_KEY in obj:
        try:
            return parse_date(obj[DATE_KEY])
        except InvalidInput:
            return obj
    return obj


def decode_value(text: str, kind: str) -> Any:
    """The Python value of a param or tag stored by :func:`encode_value`."""
    if kind == "str":
        return text
    return json.loads(text, object_hook=_dates)


def decode_dates(value: Any) -> Any:
    """``value`` (JSON values) with every ``{"$date": text}`` object as its datetime."""
    if isinstance(value, dict):
        if len(value) == 1 and DATE_KEY in value:
            return _dates(value)
        return {k: decode_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_dates(v) for v in value]
    return value
