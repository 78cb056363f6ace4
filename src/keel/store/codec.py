"""keel's records as JSON, both ways: what the REST API sends and the HTTP store reads.

This module owns the wire form of the entities of :mod:`keel.entities` and of queries:

* :func:`encode` turns a record (or a list of them) into plain JSON values;
  :func:`decode` builds the record back from them, ignoring fields it does not know (a newer
  server may send more).
* Metric numbers that JSON cannot spell (NaN, ±inf) travel as the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` (as in protobuf's JSON mapping), so every answer about
  metrics is standard JSON. Params and tags are the user's own JSON values and travel as
  they are; the rare non-finite float inside one is written as Python's ``json`` writes it.
* Datetimes inside params, tags and queries travel as ``{"$date": "<ISO text>"}``, the
  form the stores keep (:mod:`keel.store.values`), and are decoded back into datetimes.
* :func:`encode_query` turns a MongoDB-style query that may hold compiled regular
  expressions and sets into JSON values with the same meaning.

It sits in ``keel.store`` because the HTTP store needs it and may not import the server.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from keel.entities import (
    ApiToken,
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationIndex,
    Metric,
    ModelVersion,
    Project,
    RegisteredModel,
    Run,
    User,
)
from keel.errors import InvalidInput
from keel.store.values import DATE_KEY, date_text, decode_dates

E = TypeVar("E")

#: the records that travel over the API
ENTITIES: tuple[type, ...] = (
    ApiToken,
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationIndex,
    Metric,
    ModelVersion,
    Project,
    RegisteredModel,
    Run,
    User,
)

#: fields holding the user's values (params, tags), where datetimes travel as {"$date": …}
_VALUE_MAP_FIELDS = frozenset({"params", "tags"})
#: fields holding one metric number, and fields holding a {key: metric number} map
_NUMBER_FIELDS = frozenset({"value", "latency_ms"})
_NUMBER_MAP_FIELDS = frozenset({"metrics"})
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_number(value: float) -> float | str:
    """A metric number as JSON: itself, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_number(value: Any) -> float:
    """The float of a metric number sent by :func:`encode_number` (or any JSON number)."""
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        raise InvalidInput(f"not a metric number: {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"not a metric number: {value!r}")
    return float(value)


def encode(record: Any) -> Any:
    """A record (or a list or tuple of records) as JSON values."""
    if isinstance(record, list | tuple):
        return [encode(r) for r in record]
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError(f"not a keel record: {record!r}")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name in _NUMBER_FIELDS and isinstance(value, float):
            value = encode_number(value)
        elif f.name in _NUMBER_MAP_FIELDS and isinstance(value, Mapping):
            value = {k: encode_number(v) for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def decode(kind: type[E], data: Any) -> E:
    """The record of type ``kind`` from JSON values made by :func:`encode`."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"expected a {kind.__name__} object, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            continue  # a newer server may send more fields than this client knows
        if name in _NUMBER_FIELDS and value is not None:
            value = decode_number(value)
        elif name in _NUMBER_MAP_FIELDS and isinstance(value, Mapping):
            value = {k: decode_number(v) for k, v in value.items()}
        elif name in _VALUE_MAP_FIELDS and isinstance(value, Mapping):
            value = decode_dates(dict(value))
        elif name == "aliases" and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return kind(**values)
    except TypeError as exc:
        raise InvalidInput(f"malformed {kind.__name__} in the answer: {exc}") from None


def decode_list(kind: type[E], data: Any) -> list[E]:
    """A list of records of type ``kind``."""
    if not isinstance(data, list):
        raise InvalidInput(f"expected a list of {kind.__name__}, got {type(data).__name__}")
    return [decode(kind, item) for item in data]


def encode_query(query: Any) -> Any:
    """A MongoDB-style query (or any part of one) as JSON values with the same meaning.

    A compiled pattern becomes ``{"$regex": ..., "$options": ...}`` (or merges into the
    operator dict it sits in); sets become lists. Everything else is left for the store to
    judge, so a malformed query is refused with the store's own message.
    """
    if isinstance(query, Mapping):
        out: dict[str, Any] = {}
        for key, value in query.items():
            if isinstance(value, re.Pattern):
                if key == "$regex":
                    out["$regex"] = value.pattern
                    flags = _flags(value) + str(query.get("$options", ""))
                    if flags:
                        out["$options"] = flags
                    continue
                out[key] = _regex(value)
            elif key == "$options" and isinstance(query.get("$regex"), re.Pattern):
                continue  # merged into $options above
            else:
                out[key] = encode_query(value)
        return out
    if isinstance(query, list | tuple):
        return [encode_query(v) for v in query]
    if isinstance(query, set | frozenset):
        return [encode_query(v) for v in sorted(query, key=repr)]
    if isinstance(query, re.Pattern):
        return _regex(query)
    if isinstance(query, datetime):
        return {DATE_KEY: date_text(query)}
    return query


def _regex(pattern: re.Pattern[str]) -> dict[str, str]:
    flags = _flags(pattern)
    return {"$regex": pattern.pattern, **({"$options": flags} if flags else {})}


def _flags(pattern: re.Pattern[str]) -> str:
    # the store accepts i, m, s and x; other flags (ASCII, DEBUG…) have no SQL meaning
    names = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))
    return "".join(letter for flag, letter in names if pattern.flags & flag)


def encode_sort(sort: Sequence[Any] | None) -> list[Any] | None:
    """A sort as JSON: a list of ``[field, 1 | -1]`` pairs (or ``"-field"`` strings)."""
    if sort is None:
        return None
    return [list(item) if isinstance(item, tuple) else item for item in sort]


def dumps(value: Any) -> bytes:
    """Compact JSON bytes. Non-finite floats inside user values are written, not refused."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=True, default=_default
    ).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):  # a datetime in params or tags, as keel.store.values keeps it
        return {DATE_KEY: date_text(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def loads(data: bytes | str) -> Any:
    """JSON values from text (accepting the ``NaN`` / ``Infinity`` words :func:`dumps` may
    write)."""
    return json.loads(data)
