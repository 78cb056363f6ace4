"""MongoDB's meaning of a query on a param or tag, shared by the SQL and Python evaluators.

A param or tag is a JSON value (plus datetimes, :mod:`keel.store.values`). A query field
such as ``tags.ns.key`` names a key and a path into its value. As in MongoDB:

* a field that reaches a list matches a scalar operand when the list itself or any element
  matches it (equality, comparisons, ``$in``, ``$regex``); a list operand matches the
  whole list, or an element that is that list; ``$ne`` / ``$nin`` / ``$not`` match when no
  element (and not the list) matches, and when the field is missing;
* ``{"f": None}`` matches a missing field, a null, and a list holding a null;
* ``$elemMatch`` needs one element to satisfy all its conditions (an operator dict, or a
  query over the fields of dict elements); ``$all`` needs every operand to match;
  ``$size`` is the length of a list;
* values of different types never match or order with each other: numbers with numbers,
  text with text by code point, datetimes with datetimes, booleans and null only by
  equality, lists and dicts by their compact JSON with sorted keys.

keel's keys may hold dots (``tags["a.b"]``), so a field such as ``tags.a.b.c`` is every
split of ``a.b.c`` into a key and a path: key ``a.b.c``; key ``a.b``, path ``c``; key
``a``, path ``b.c``. The field's values are those of every split that exists (for a
usual record, one). This module holds what both evaluators share: the splits and the
operands as the stores compare them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keel.errors import InvalidInput
from keel.store.values import DATE_KEY, DATE_WIDTH, date_text, encode_text, parse_date, stored_form

__all__ = ["MAX_PATH_PARTS", "Operand", "operand_of", "splits"]

#: a field reaches at most this many keys deep (each split is one lookup in SQL)
MAX_PATH_PARTS = 16
_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]{1,250}$")  # keel.store.validation.KEY_PATTERN


def splits(rest: str) -> list[tuple[str, tuple[str, ...]]]:
    """The (key, path) pairs a field name after ``params.`` / ``tags.`` may mean, longest
    key first. Splits that no stored value can have are left out: a key keel refuses, a
    path part that is empty, starts with ``$`` or holds ``"``."""
    parts = rest.split(".")
    if len(parts) > MAX_PATH_PARTS:
        raise InvalidInput(
            f"the query field {rest!r} has {len(parts)} dotted parts: use at most {MAX_PATH_PARTS}"
        )
    out: list[tuple[str, tuple[str, ...]]] = []
    for i in range(len(parts), 0, -1):
        key, path = ".".join(parts[:i]), tuple(parts[i:])
        if not _KEY.match(key) or any(not p or p.startswith("$") or '"' in p for p in path):
            continue
        out.append((key, path))
    return out


@dataclass(frozen=True)
class Operand:
    """A query operand as every store compares it.

    Attributes:
        kind: ``null``, ``bool``, ``number``, ``string``, ``date``, ``container`` or
            ``nan`` (matches nothing).
        value: the bool; the float; the text; the datetime's 26-character ISO text; the
            container's compact JSON with sorted keys.
        strict: the container's JSON is standard (no NaN or infinity inside).
    """

    kind: str
    value: Any = None
    strict: bool = True


def operand_of(value: Any, name: str) -> Operand:
    """The :class:`Operand` of ``value`` given on field ``name``, or InvalidInput."""
    from keel.store.matching import check_text, number_operand

    if value is None:
        return Operand("null")
    if isinstance(value, bool):
        return Operand("bool", value)
    if isinstance(value, int | float):
        if value != value:
            return Operand("nan")
        return Operand("number", number_operand(value, name))
    if isinstance(value, str):
        return Operand("string", check_text(value, f"the value on {name!r}"))
    if isinstance(value, datetime):
        return Operand("date", date_text(value)[:DATE_WIDTH])
    if isinstance(value, Mapping) and DATE_KEY in value:
        if len(value) != 1:
            raise InvalidInput(f"a {DATE_KEY!r} operand on {name!r} holds nothing else")
        return Operand("date", date_text(parse_date(value[DATE_KEY]))[:DATE_WIDTH])
    if isinstance(value, Mapping | list | tuple):
        try:
            form = stored_form(value)
            _check_texts(form, name)
            text = encode_text(form)
        except (TypeError, ValueError, RecursionError):
            raise InvalidInput(
                f"cannot compare {name!r} with {type(value).__name__} {_clip(value)}: use "
                "strings, numbers, booleans, null, datetimes, and lists and dicts of them"
            ) from None
        try:
            json.dumps(form, allow_nan=False)
        except ValueError:
            return Operand("container", text, strict=False)
        return Operand("container", text)
    raise InvalidInput(
        f"cannot compare {name!r} with {type(value).__name__} {_clip(value)}: use strings, "
        "numbers, booleans, null, datetimes, and lists and dicts of them"
    )


def _check_texts(value: Any, name: str) -> None:
    from keel.store.matching import check_text

    if isinstance(value, str):
        check_text(value, f"the value on {name!r}")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(k)
            check_text(k, f"the value on {name!r}")
            _check_texts(v, name)
    elif isinstance(value, list):
        for v in value:
            _check_texts(v, name)
    elif isinstance(value, float) and math.isnan(value):
        pass


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def size_operand(value: Any, name: str) -> int:
    """The length ``$size`` asks for (a whole number, 0 or more), or InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidInput(f"$size on {name!r} takes a whole number, got {value!r}")
    if value < 0:
        raise InvalidInput(f"$size on {name!r} takes 0 or more, got {value!r}")
    return int(value)


def all_operand(value: Any, name: str) -> list[Any]:
    """The values ``$all`` needs (a list of values, not of ``$elemMatch`` queries)."""
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"$all on {name!r} takes a list, got {value!r}")
    for item in value:
        operators = isinstance(item, Mapping) and any(str(k).startswith("$") for k in item)
        if operators and not (len(item) == 1 and DATE_KEY in item):
            raise InvalidInput(f"$all on {name!r} takes values, not operators ({item!r})")
    return list(value)


def elem_match_operand(value: Any, name: str) -> tuple[bool, Mapping[str, Any]]:
    """(is an operator dict, the dict) of ``$elemMatch``, or InvalidInput."""
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"$elemMatch on {name!r} takes a non-empty dict, got {value!r}")
    keys = [str(k) for k in value]
    operators = [k for k in keys if k.startswith("$") and k not in ("$and", "$or", "$nor")]
    if operators and len(operators) != len(keys):
        raise InvalidInput(
            f"$elemMatch on {name!r} takes operators ({{'$gt': 1}}) or a query on the "
            "elements' fields ({'x': 1}), not both"
        )
    return bool(operators), value


def subqueries(operator: str, value: Any) -> list[Mapping[str, Any]]:
    """The queries under ``$and``/``$or``/``$nor``: a non-empty list of query dicts."""
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput(f"{operator} takes a non-empty list of queries")
    for item in value:
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{operator} takes a list of query dicts, got {item!r}")
    return list(value)
