"""keel's query language evaluated in Python, on records already fetched.

The SQL store compiles MongoDB-style queries to SQL (:mod:`keel.store.query`); a backend
that cannot run them all where the records live (the MLflow server) evaluates what is left
here, with the same meaning:

* the same fields: attributes, ``params.*`` / ``tags.*`` (JSON values compared through
  their text and float forms, see :mod:`keel.store.values`), ``metrics.*`` (latest value),
  related records (``exp.*``, ``run.*``, ``model.*``) and self prefixes (``run.name``);
* the same operators and the same refusals, with the same messages;
* the same operands: strings with a NUL or an unpaired surrogate (which no store can hold),
  numbers beyond a float and values that are not JSON are refused; ``$regex`` patterns are
  written out by :mod:`keel.store.regex`, so every backend runs the same one;
* SQL's three-valued logic, so a NaN metric (NULL in SQL) matches neither ``$eq`` nor
  ``$ne``; a missing field matches ``$ne``, ``$nin``, ``$not`` and ``{"$exists": False}``;
  comparisons never match across types;
* the same order: ``nulls last`` per sort item, params and tags by number then text, and
  the record id as the last tie-breaker.

A record is a mapping of attribute names to values, plus ``params``, ``tags`` and
``metrics`` dicts and related records under their prefix; any value may be a :class:`Lazy`
computed on first use (so a related record is fetched only when a query needs it).

Example:
    >>> match = compile_query({"params.lr": {"$lt": 0.1}}, RUN)
    >>> match({"id": "a", "params": {"lr": 0.01}})
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keel.errors import InvalidInput, QueryTooComplex
from keel.store.documents import (
    Operand,
    all_operand,
    elem_match_operand,
    operand_of,
    size_operand,
    splits,
    subqueries,
)
from keel.store.limits import check_query
from keel.store.regex import translate
from keel.store.values import DATE_KEY, DATE_WIDTH, date_text, encode_text, encode_value

__all__ = [
    "COMPARISONS",
    "DATASET",
    "EXPERIMENT",
    "FIELD_OPERATORS",
    "MODEL",
    "RUN",
    "VERSION",
    "Lazy",
    "Schema",
    "attribute_operand",
    "check_text",
    "compile_query",
    "conjuncts",
    "flags_of",
    "json_operand",
    "number_operand",
    "page",
    "regex_of",
    "sort_item",
    "sort_list",
    "sort_records",
]

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
FIELD_OPERATORS = (
    *COMPARISONS,
    "$in",
    "$nin",
    "$all",
    "$size",
    "$elemMatch",
    "$exists",
    "$regex",
    "$options",
    "$not",
)

Record = Mapping[str, Any]
#: a compiled query: True (match), False, or None (SQL's NULL: no match either)
Predicate = Callable[[Record], bool | None]


# --- shared parsing ------------------------------------------------------------------------


def sort_list(sort: Any) -> Sequence[Any]:
    """The items of a sort (none for None), refusing a sort that is not a list of them."""
    if sort is None:
        return ()
    if not isinstance(sort, list | tuple):
        raise InvalidInput(f"a sort is a list of (field, 1 | -1) items, got {sort!r}")
    return sort


def sort_item(item: Any) -> tuple[str, int]:
    """``(field, 1 | -1)`` from a sort item: a pair, or ``"field"`` / ``"-field"``."""
    if isinstance(item, str):
        return (item[1:], -1) if item.startswith("-") else (item, 1)
    if isinstance(item, list | tuple) and len(item) == 2 and item[1] in (1, -1):
        return str(item[0]), int(item[1])
    raise InvalidInput(f"a sort item is (field, 1) or (field, -1), got {item!r}")


def flags_of(pattern: re.Pattern[str]) -> str:
    """The ``$options`` letters a compiled pattern carries."""
    return "i" if pattern.flags & re.IGNORECASE else ""


def check_text(text: str, what: str) -> str:
    """``text`` if every store can hold and compare it: no NUL, no unpaired surrogate."""
    if "\x00" in text:
        raise InvalidInput(f"{what} {_clip(text)} holds a NUL character, which no store keeps")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} {_clip(text)} is not valid Unicode (a lone surrogate)"
        ) from None
    return text


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def number_operand(value: int | float, name: str) -> float:
    """A number operand as the float the stores compare (beyond ±1.8e308: InvalidInput)."""
    try:
        return float(value)
    except OverflowError:
        raise InvalidInput(f"the number on {name!r} is too large for a float") from None


def json_operand(value: Any, name: str) -> str:
    """The text a param or tag value must have to equal ``value`` (see keel.store.values)."""
    if isinstance(value, str):
        return check_text(value, f"the value on {name!r}")
    try:
        return encode_text(value)
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput(
            f"cannot compare {name!r} with {type(value).__name__} {_clip(repr(value))}: use "
            "strings, numbers, booleans, null, and lists and dicts of them"
        ) from None


#: int64, the range of the integer columns (times, version numbers)
_INT64 = (-(2**63), 2**63 - 1)


def attribute_operand(value: Any, name: str, floats: bool) -> tuple[str, Any]:
    """``(family, operand)`` of a value compared with an attribute or a metric.

    The family is ``number``, ``text``, ``bool`` (matches no attribute) or ``nan`` (equals
    nothing); a stored value matches only an operand of its own family. ``floats``: the
    column holds floats (metrics), which the databases compare with the operand as a float.
    """
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int | float):
        if value != value:
            return "nan", value
        if floats or (isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]):
            return "number", number_operand(value, name)
        return "number", value
    if isinstance(value, str):
        return "text", check_text(value, f"the value on {name!r}")
    raise InvalidInput(f"cannot compare a record attribute with {_clip(repr(value))}")


def regex_of(name: str, pattern: Any, options: Any) -> str:
    """The pattern of ``{"$regex": pattern, "$options": options}`` as every store runs it."""
    flags = options if options is not None else ""
    if not isinstance(flags, str):
        raise InvalidInput(f"$options on {name!r} takes letters such as 'i', got {flags!r}")
    if isinstance(pattern, re.Pattern):
        flags += flags_of(pattern)
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise InvalidInput(f"$regex on {name!r} takes a string pattern")
    return translate(check_text(pattern, f"the $regex on {name!r}"), flags)


def conjuncts(query: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The query as a list of one-key queries whose AND is the query (``$and`` flattened).

    Only the shape is looked at: a malformed ``$and`` is kept whole, for the compiler to
    refuse with its own message.
    """
    out: list[dict[str, Any]] = []
    for key, value in (query or {}).items():
        if (
            key == "$and"
            and isinstance(value, list | tuple)
            and value
            and all(isinstance(v, Mapping) for v in value)
        ):
            for sub in value:
                out.extend(conjuncts(sub))
        else:
            out.append({key: value})
    return out


# --- what each kind of record offers -------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """The fields of one kind of record (the Python twin of a SQL ``Target``)."""

    attributes: frozenset[str]
    key_values: tuple[str, ...] = ()
    metrics: bool = False
    relations: Mapping[str, Callable[[], Schema]] = field(default_factory=dict)
    self_names: tuple[str, ...] = ()

    def allowed(self) -> list[str]:
        names = sorted(self.attributes) + [f"{p}.*" for p in self.key_values]
        if self.metrics:
            names.append("metrics.*")
        return names + [f"{p}.*" for p in self.relations]


EXPERIMENT = Schema(
    frozenset({"id", "name", "lifecycle", "created_at", "updated_at"}),
    ("tags",),
    self_names=("exp",),
)
RUN = Schema(
    frozenset(
        {
            "id",
            "name",
            "kind",
            "status",
            "start_time",
            "end_time",
            "parent_id",
            "author",
            "experiment_id",
            "lifecycle",
            "created_at",
        }
    ),
    ("params", "tags"),
    metrics=True,
    relations={"exp": lambda: EXPERIMENT},
    self_names=("run",),
)
MODEL = Schema(
    frozenset({"id", "name", "description", "created_at", "updated_at"}),
    ("tags",),
    self_names=("model",),
)
VERSION = Schema(
    frozenset(
        {
            "id",
            "version",
            "label",
            "description",
            "run_id",
            "path_in_run",
            "content_hash",
            "author",
            "created_at",
        }
    ),
    ("tags",),
    metrics=True,  # the latest metrics of the version's source run
    relations={"model": lambda: MODEL, "run": lambda: RUN},
    self_names=("version",),
)
DATASET = Schema(
    frozenset(
        {"id", "name", "version", "content_hash", "description", "run_id", "author", "created_at"}
    ),
    ("tags",),
    relations={"run": lambda: RUN},
    self_names=("dataset",),
)


class Lazy:
    """A record value computed on first use (a related record, a run's metrics)."""

    __slots__ = ("_done", "_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._done = False
        self._value: Any = None

    def get(self) -> Any:
        if not self._done:
            self._value = self._make()
            self._done = True
        return self._value


def _get(record: Record | None, name: str) -> Any:
    if record is None:
        return None
    value = record.get(name)
    return value.get() if isinstance(value, Lazy) else value


# --- field values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One field of one record as a query sees it (the SQL columns of ``_Field``).

    Attributes:
        present: the field exists (SQL: the joined row or the column is not NULL).
        text: an attribute's value; a param's or tag's text; a metric's float (None: NaN).
        number: the float of a numeric param or tag, or a metric's float.
        kind: the JSON type name of a param or tag (None for attributes and metrics).
    """

    present: bool
    text: Any = None
    number: float | None = None
    kind: str | None = None


_MISSING = Value(False)


@dataclass(frozen=True)
class _Field:
    """A resolved field name: how to read it from a record, and what kind of column it is."""

    read: Callable[[Record], Value]
    is_attribute: bool  # attributes and metrics (compared as they are)
    is_key_value: bool  # params and tags (compared by kind, number and text)
    floats: bool = False  # a metric: numbers are compared as floats


def _resolve(schema: Schema, path: str, name: str) -> _Field:
    if not name:
        raise InvalidInput("empty field name in query")
    check_text(name, "the query field")
    if name in schema.attributes:

        def attribute(record: Record) -> Value:
            value = _get(record, name)
            return _MISSING if value is None else Value(True, value)

        return _Field(attribute, True, False)
    head, _, rest = name.partition(".")
    if head in schema.self_names and rest:
        return _resolve(schema, f"{path}{head}.", rest)
    if head in schema.key_values and rest:

        def key_value(record: Record) -> Value:
            values = _get(record, head) or {}
            if rest not in values:
                return _MISSING
            text, kind, number = encode_value(values[rest])
            return Value(True, text, number, kind)

        return _Field(key_value, False, True)
    if head == "metrics" and rest and schema.metrics:

        def metric(record: Record) -> Value:
            values = _get(record, "metrics") or {}
            if rest not in values:
                return _MISSING
            number = float(values[rest])
            if math.isnan(number):
                return Value(True, None, None)  # SQL keeps a NaN as NULL
            return Value(True, number, number)

        return _Field(metric, True, False, floats=True)
    if head in schema.relations and rest:
        inner = _resolve(schema.relations[head](), f"{path}{head}.", rest)

        def related(record: Record) -> Value:
            other = _get(record, head)
            return inner.read(other) if other is not None else _MISSING

        return _Field(related, inner.is_attribute, inner.is_key_value, inner.floats)
    raise InvalidInput(
        f"unknown query field {path + name!r}: use one of {', '.join(schema.allowed())}"
    )


# --- three-valued logic --------------------------------------------------------------------


def _and(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = True
    for v in values:
        if v is False:
            return False
        if v is None:
            result = None
    return result


def _or(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = False
    for v in values:
        if v is True:
            return True
        if v is None:
            result = None
    return result


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _all(preds: Sequence[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda r: _and(p(r) for p in preds)


# --- the compiler --------------------------------------------------------------------------


def compile_query(query: Mapping[str, Any] | None, schema: Schema) -> Predicate:
    """Check a query against a kind of record and return its predicate.

    Args:
        query: a MongoDB-style query (None: everything).
        schema: the kind of record it is about (:data:`RUN`, :data:`EXPERIMENT`…).

    Returns:
        ``predicate(record)``: True when the record matches (False or None otherwise).

    Raises:
        InvalidInput: the query is malformed, with the SQL store's message.
    """
    if query is not None and not isinstance(query, Mapping):
        raise InvalidInput(f"a query must be a dict, got {type(query).__name__}")
    check_query(query)
    try:
        return _Compiler(schema).document(query or {})
    except RecursionError:  # the limits keep queries far from this; never a crash
        raise QueryTooComplex(
            "the query nests too deep to build: simplify it (fewer nested $and, $or, $nor, "
            "$not and $elemMatch)"
        ) from None


class _Compiler:
    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._fields: dict[str, _Field] = {}

    def field(self, name: str) -> _Field:
        if name not in self._fields:
            self._fields[name] = _resolve(self._schema, "", name)
        return self._fields[name]

    def document(self, query: Mapping[str, Any]) -> Predicate:
        parts: list[Predicate] = []
        for key, value in query.items():
            if not isinstance(key, str):
                raise InvalidInput(f"query keys must be strings, got {key!r}")
            if key in ("$and", "$or", "$nor"):
                parts.append(self.logical(key, value))
            elif key == "$not":
                if not isinstance(value, Mapping):
                    raise InvalidInput("top-level $not takes a query dict")
                inner = self.document(value)
                parts.append(lambda r, inner=inner: _not(inner(r)))
            elif key.startswith("$"):
                raise InvalidInput(
                    f"unknown query operator {key!r}: use $and, $or, $nor or a field name"
                )
            else:
                parts.append(self.condition(key, value))
        if not parts:
            return lambda r: True
        return _all(parts)

    def logical(self, operator: str, value: Any) -> Predicate:
        subs = [self.document(item) for item in subqueries(operator, value)]
        if operator == "$and":
            return lambda r: _and(s(r) for s in subs)
        if operator == "$or":
            return lambda r: _or(s(r) for s in subs)
        return lambda r: _not(_or(s(r) for s in subs))

    def condition(self, name: str, spec: Any) -> Predicate:
        doc = _resolve_doc(self._schema, name)
        if doc is not None:
            return _DocConditions(name, doc).condition(spec)
        resolved = self.field(name)
        if isinstance(spec, Mapping) and spec and all(str(k).startswith("$") for k in spec):
            return self.operators(name, resolved, spec)
        if isinstance(spec, re.Pattern):
            return _regex(resolved, regex_of(name, spec, None))
        return _eq(name, resolved, spec)

    def operators(self, name: str, resolved: _Field, spec: Mapping[str, Any]) -> Predicate:
        parts: list[Predicate] = []
        for op, operand in spec.items():
            if op not in FIELD_OPERATORS:
                raise InvalidInput(
                    f"unknown operator {op!r} on {name!r}: use one of " + ", ".join(FIELD_OPERATORS)
                )
            if op == "$eq":
                parts.append(_eq(name, resolved, operand))
            elif op == "$ne":
                eq = _eq(name, resolved, operand)
                parts.append(lambda r, eq=eq: _not(eq(r)))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                parts.append(_compare(name, resolved, op, operand))
            elif op in ("$in", "$nin"):
                if not isinstance(operand, list | tuple | set | frozenset):
                    raise InvalidInput(f"{op} on {name!r} takes a list, got {operand!r}")
                eqs = [_eq(name, resolved, item) for item in operand]
                if op == "$in":
                    parts.append(lambda r, eqs=eqs: _or(e(r) for e in eqs))
                else:
                    parts.append(lambda r, eqs=eqs: _not(_or(e(r) for e in eqs)))
            elif op == "$exists":
                wanted = bool(operand)
                parts.append(lambda r, w=wanted: resolved.read(r).present is w)
            elif op in ("$size", "$elemMatch"):
                if op == "$size":
                    size_operand(operand, name)
                else:
                    elem_match_operand(operand, name)
                parts.append(lambda r: False)  # a record attribute is never a list
            elif op == "$all":
                alls = [_eq(name, resolved, item) for item in all_operand(operand, name)]
                parts.append(lambda r, alls=alls: _and(e(r) for e in alls) if alls else False)
            elif op == "$regex":
                parts.append(_regex(resolved, regex_of(name, operand, spec.get("$options"))))
            elif op == "$options":
                if "$regex" not in spec:
                    raise InvalidInput(f"$options on {name!r} needs $regex beside it")
            else:  # $not
                if isinstance(operand, re.Pattern):
                    inner = _regex(resolved, regex_of(name, operand, None))
                elif isinstance(operand, Mapping) and operand:
                    inner = self.operators(name, resolved, operand)
                else:
                    raise InvalidInput(f"$not on {name!r} takes an operator dict or a regex")
                parts.append(lambda r, inner=inner: _not(inner(r)))
        if not parts:
            return lambda r: True
        return _all(parts)


def _eq(name: str, resolved: _Field, value: Any) -> Predicate:
    read = resolved.read
    if value is None:
        return lambda r: not read(r).present
    if isinstance(value, Mapping | list | tuple | set) and resolved.is_attribute:
        raise InvalidInput(f"cannot compare a record attribute with {value!r}")
    if resolved.is_attribute:
        family, operand = attribute_operand(value, name, resolved.floats)
        if family in ("bool", "nan"):
            return lambda r: False  # no attribute is a bool; NaN equals nothing

        def attribute(r: Record) -> bool | None:
            v = read(r)
            if not v.present or _family(v.text) != family:
                return False
            if v.text is None:
                return None  # a NaN metric: NULL = x is NULL
            return bool(v.text == operand)

        return attribute
    if isinstance(value, bool):
        text = "true" if value else "false"
        return lambda r: (v := read(r)).present and v.kind == "bool" and v.text == text
    if isinstance(value, int | float):
        if value != value:  # NaN equals nothing
            return lambda r: False
        number = number_operand(value, name)
        return lambda r: (v := read(r)).present and v.number is not None and v.number == number
    text = json_operand(value, name)
    return lambda r: (v := read(r)).present and v.text == text


def _family(column: Any) -> str:
    """The family of a stored attribute or metric value (None: a NaN metric, a number)."""
    if column is None or (isinstance(column, int | float) and not isinstance(column, bool)):
        return "number"
    return "text" if isinstance(column, str) else type(column).__name__


def _compare(name: str, resolved: _Field, op: str, value: Any) -> Predicate:
    if isinstance(value, bool) or value is None or isinstance(value, Mapping | list):
        raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
    read = resolved.read
    check = _COMPARE[op]
    if resolved.is_key_value:
        if isinstance(value, int | float):
            if value != value:
                return lambda r: False
            number = number_operand(value, name)
            return lambda r: (
                (v := read(r)).present and v.number is not None and check(v.number, number)
            )
        if isinstance(value, str):
            text = check_text(value, f"the value on {name!r}")
            return lambda r: (v := read(r)).present and v.kind == "str" and check(v.text, text)
        raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
    family, operand = attribute_operand(value, name, resolved.floats)
    if family in ("bool", "nan"):
        return lambda r: False

    def attribute(r: Record) -> bool:
        v = read(r)
        if not v.present or v.text is None or _family(v.text) != family:
            return False
        return bool(check(v.text, operand))

    return attribute


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _regex(resolved: _Field, pattern: str) -> Predicate:
    """``pattern`` as :func:`regex_of` wrote it; only text matches (a number never does)."""
    compiled = re.compile(pattern)
    read = resolved.read

    def search(r: Record) -> bool:
        v = read(r)
        if not v.present or not isinstance(v.text, str):
            return False
        return compiled.search(v.text) is not None

    return search


# --- sorting and paging --------------------------------------------------------------------


def sort_records(
    records: Sequence[Record],
    sort: Sequence[Any],
    schema: Schema,
    id_field: str = "id",
) -> list[Record]:
    """Records in the order the SQL store gives: each sort item with nulls last, numbers of
    params and tags before their text, and ``id_field`` ascending as the last tie-breaker."""
    keys: list[tuple[Callable[[Record], Any], bool]] = []
    for item in sort:
        name, direction = sort_item(item)
        resolved = _resolve(schema, "", name)
        read = resolved.read
        if resolved.is_key_value:
            keys.append((lambda r, read=read: read(r).number, direction < 0))
            keys.append((lambda r, read=read: read(r).text, direction < 0))
        else:
            keys.append((lambda r, read=read: read(r).text, direction < 0))
    rows = sorted(records, key=lambda r: _sortable(_get(r, id_field)))
    for key, descending in reversed(keys):
        rows = _stable_sort(rows, key, descending)
    return rows


def _stable_sort(
    rows: list[Record], key: Callable[[Record], Any], descending: bool
) -> list[Record]:
    valued = [(key(r), r) for r in rows]
    present = [(k, r) for k, r in valued if k is not None]
    missing = [r for k, r in valued if k is None]
    present.sort(key=lambda pair: _sortable(pair[0]), reverse=descending)
    return [r for _, r in present] + missing


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool | int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, repr(value))


def page(items: Sequence[Any], limit: int | None, offset: int) -> list[Any]:
    """``items[offset:offset + limit]``, refusing a negative limit or offset like the SQL
    store does."""
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit must be 0 or more, got {limit}")
    if offset and offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}")
    end = None if limit is None else offset + limit
    return list(items[offset:end])


def check_sort(sort: Sequence[Any] | None, schema: Schema) -> None:
    """Refuse a malformed sort (bad item, unknown field) before anything is fetched."""
    for item in sort_list(sort):
        _resolve(schema, "", sort_item(item)[0])


# --- params and tags: MongoDB's meaning over JSON values (keel.store.documents) ------------

#: a value inside a record: (the value, whether queries may reach into it)
_Node = tuple[Any, bool]
#: the nodes a field has in a record (several when its name splits several ways)
_Nodes = Callable[[Record], list[_Node]]
_NodeTest = Callable[[_Node], bool]


def _resolve_doc(schema: Schema, name: str) -> _Nodes | None:
    """The reader of the params or tags field ``name`` (None: another kind of field)."""
    if not name or name in schema.attributes:
        return None
    check_text(name, "the query field")
    head, _, rest = name.partition(".")
    if not rest:
        return None
    if head in schema.self_names:
        return _resolve_doc(schema, rest)
    if head in schema.key_values:
        wanted = splits(rest)

        def nodes(record: Record) -> list[_Node]:
            values = _get(record, head) or {}
            out = []
            for key, path in wanted:
                if key in values:
                    value = values[key]
                    node: _Node | None = (value, encode_value(value)[1] == "json")
                    for part in path:
                        node = _child(node, part) if node is not None else None
                    if node is not None:
                        out.append(node)
            return out

        return nodes
    if head == "metrics" and schema.metrics:
        return None
    if head in schema.relations:
        inner = _resolve_doc(schema.relations[head](), rest)
        if inner is None:
            return None

        def related(record: Record) -> list[_Node]:
            other = _get(record, head)
            return inner(other) if other is not None else []

        return related
    return None


def _child(node: _Node, key: str) -> _Node | None:
    value, navigable = node
    if navigable and isinstance(value, dict) and key in value:
        return value[key], True
    return None


def _elements(node: _Node) -> list[_Node]:
    value, navigable = node
    return [(v, True) for v in value] if navigable and isinstance(value, list) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return None if number != number else number


def _leaf_eq(node: _Node, operand: Operand) -> bool:
    value = node[0]
    kind = operand.kind
    if kind == "null":
        return value is None
    if kind == "bool":
        return isinstance(value, bool) and value is operand.value
    if kind == "number":
        return _number(value) == operand.value
    if kind == "string":
        return isinstance(value, str) and value == operand.value
    if kind == "date":
        return isinstance(value, datetime) and date_text(value)[:DATE_WIDTH] == operand.value
    if kind == "container":
        return isinstance(value, list | dict) and encode_text(value) == operand.value
    return False


def _leaf_compare(node: _Node, op: str, operand: Operand) -> bool:
    value = node[0]
    check = _COMPARE[op]
    if operand.kind == "number":
        number = _number(value)
        return number is not None and check(number, operand.value)
    if operand.kind == "string":
        return isinstance(value, str) and check(value, operand.value)
    if operand.kind == "date":
        return isinstance(value, datetime) and check(date_text(value)[:DATE_WIDTH], operand.value)
    return False


def _itself_or_element(node: _Node, test: _NodeTest) -> bool:
    return test(node) or any(test(e) for e in _elements(node))


class _DocConditions:
    """The Python twin of ``keel.store.query._DocConditions``."""

    def __init__(self, name: str, nodes: _Nodes) -> None:
        self.name = name
        self.nodes = nodes

    def any(self, test: _NodeTest) -> Predicate:
        nodes = self.nodes
        return lambda r: any(test(n) for n in nodes(r))

    def condition(self, spec: Any) -> Predicate:
        if (
            isinstance(spec, Mapping)
            and spec
            and all(str(k).startswith("$") for k in spec)
            and not (len(spec) == 1 and DATE_KEY in spec)
        ):
            return self.operators(spec)
        if isinstance(spec, re.Pattern):
            return self.regex(regex_of(self.name, spec, None))
        return self.eq(spec)

    def eq(self, value: Any) -> Predicate:
        operand = operand_of(value, self.name)
        if operand.kind == "null":
            nodes = self.nodes

            def null(r: Record) -> bool:
                found = nodes(r)
                return not found or any(
                    _itself_or_element(n, lambda m: m[0] is None) for n in found
                )

            return null
        return self.any(lambda n: _itself_or_element(n, lambda m: _leaf_eq(m, operand)))

    def compare(self, op: str, value: Any) -> Predicate:
        name = self.name
        if isinstance(value, bool) or value is None or isinstance(value, list | tuple):
            raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
        if isinstance(value, Mapping) and DATE_KEY not in value:
            raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
        operand = operand_of(value, name)
        return self.any(lambda n: _itself_or_element(n, lambda m: _leaf_compare(m, op, operand)))

    def regex(self, pattern: str) -> Predicate:
        compiled = re.compile(pattern)

        def test(node: _Node) -> bool:
            return isinstance(node[0], str) and compiled.search(node[0]) is not None

        return self.any(lambda n: _itself_or_element(n, test))

    def operators(self, spec: Mapping[str, Any]) -> Predicate:
        name = self.name
        parts: list[Predicate] = []
        for op, operand in spec.items():
            if op not in FIELD_OPERATORS:
                raise InvalidInput(
                    f"unknown operator {op!r} on {name!r}: use one of " + ", ".join(FIELD_OPERATORS)
                )
            if op == "$eq":
                parts.append(self.eq(operand))
            elif op == "$ne":
                eq = self.eq(operand)
                parts.append(lambda r, eq=eq: not eq(r))
            elif op in _COMPARE:
                parts.append(self.compare(op, operand))
            elif op in ("$in", "$nin"):
                if not isinstance(operand, list | tuple | set | frozenset):
                    raise InvalidInput(f"{op} on {name!r} takes a list, got {operand!r}")
                eqs = [self.eq(item) for item in operand]
                if op == "$in":
                    parts.append(lambda r, eqs=eqs: any(e(r) for e in eqs))
                else:
                    parts.append(lambda r, eqs=eqs: not any(e(r) for e in eqs))
            elif op == "$all":
                alls = [self.eq(item) for item in all_operand(operand, name)]
                parts.append(lambda r, alls=alls: bool(alls) and all(e(r) for e in alls))
            elif op == "$exists":
                present = self.any(lambda n: True)
                wanted = bool(operand)
                parts.append(lambda r, p=present, w=wanted: p(r) is w)
            elif op == "$size":
                size = size_operand(operand, name)
                parts.append(
                    self.any(lambda n, s=size: n[1] and isinstance(n[0], list) and len(n[0]) == s)
                )
            elif op == "$elemMatch":
                parts.append(self.elem_match(operand))
            elif op == "$regex":
                parts.append(self.regex(regex_of(name, operand, spec.get("$options"))))
            elif op == "$options":
                if "$regex" not in spec:
                    raise InvalidInput(f"$options on {name!r} needs $regex beside it")
            else:  # $not
                if isinstance(operand, re.Pattern):
                    inner = self.regex(regex_of(name, operand, None))
                elif isinstance(operand, Mapping) and operand:
                    inner = self.operators(operand)
                else:
                    raise InvalidInput(f"$not on {name!r} takes an operator dict or a regex")
                parts.append(lambda r, inner=inner: not inner(r))
        return lambda r: all(p(r) for p in parts)

    def elem_match(self, operand: Any) -> Predicate:
        is_operators, spec = elem_match_operand(operand, self.name)
        name = self.name
        if is_operators:
            holder: list[_Node] = []
            test = _DocConditions(name, lambda r: holder).operators(spec)
        else:
            holder = []
            test = _ElementQuery(name, holder).document(spec)

        def element_test(element: _Node) -> bool:
            holder[:] = [element]
            return bool(test({}))

        return self.any(lambda n: any(element_test(e) for e in _elements(n)))


class _ElementQuery:
    """A query on the fields of a list element (``$elemMatch: {"x": 1}``); the element is
    the one node in ``holder`` when the predicate runs."""

    def __init__(self, name: str, holder: list[_Node]) -> None:
        self.name = name
        self.holder = holder

    def document(self, query: Mapping[str, Any]) -> Predicate:
        parts: list[Predicate] = []
        for key, value in query.items():
            if not isinstance(key, str):
                raise InvalidInput(f"query keys must be strings, got {key!r}")
            if key in ("$and", "$or", "$nor"):
                subs = [self.document(item) for item in subqueries(key, value)]
                if key == "$and":
                    parts.append(lambda r, subs=subs: all(s(r) for s in subs))
                elif key == "$or":
                    parts.append(lambda r, subs=subs: any(s(r) for s in subs))
                else:
                    parts.append(lambda r, subs=subs: not any(s(r) for s in subs))
            elif key.startswith("$"):
                raise InvalidInput(f"unknown query operator {key!r} in $elemMatch on {self.name!r}")
            else:
                check_text(key, "the query field")
                keys = key.split(".")
                reachable = all(k and not k.startswith("$") and '"' not in k for k in keys)
                holder = self.holder

                def nodes(
                    r: Record,
                    keys: list[str] = keys,
                    ok: bool = reachable,
                    holder: list[_Node] = holder,
                ) -> list[_Node]:
                    if not ok or not holder:
                        return []
                    node: _Node | None = holder[0]
                    for k in keys:
                        node = _child(node, k) if node is not None else None
                    return [node] if node is not None else []

                parts.append(_DocConditions(f"{self.name}.{key}", nodes).condition(value))
        return lambda r: all(p(r) for p in parts)
