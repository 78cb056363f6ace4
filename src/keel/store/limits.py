"""How complex a query keel runs: nesting, conditions, listed values, joined fields.

A query is checked here before any SQL is built (by :class:`keel.store.query.QueryBuilder`)
and before the in-Python matcher compiles it (:func:`keel.store.matching.compile_query`), so
every backend refuses the same queries with the same message. A refusal is a
:class:`~keel.errors.QueryTooComplex` (an :class:`~keel.errors.InvalidInput`: the caller's
to fix, a 4xx on the server) whose message names the limit.

The limits sit far above queries people write and below what the databases compile:

================================  =====  ===============================================
limit                             value  what it keeps away
================================  =====  ===============================================
:data:`MAX_QUERY_DEPTH`           20     SQLite's parser stack (100 entries) overflows
                                         at 27 nested ``$nor``; Python's recursion limit
:data:`MAX_ELEM_MATCH_DEPTH`      4      each ``$elemMatch`` is a subquery over
                                         ``json_each``: SQLite refuses a 6th
:data:`MAX_QUERY_CONDITIONS`      500    building and compiling the SQL (~2 ms of CPU per
                                         condition on params or tags)
:data:`MAX_QUERY_VALUES`          1,000  bound parameters (SQLite: 32,766, PostgreSQL:
                                         65,535 per statement)
:data:`MAX_JOINED_FIELDS`         50     SQLite's 64 tables per join: each metric a query
                                         reads and each sort field is one
================================  =====  ===============================================

The walk over the query is iterative and stops at the first limit passed, so a query
nested 100,000 deep costs what one nested 21 deep does. Anything this check lets through
that the database still cannot compile (a mix of every kind of nesting) is refused by the
database, and :mod:`keel.store.engine` turns that refusal into the same error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.errors import QueryTooComplex

__all__ = [
    "MAX_ELEM_MATCH_DEPTH",
    "MAX_JOINED_FIELDS",
    "MAX_QUERY_CONDITIONS",
    "MAX_QUERY_DEPTH",
    "MAX_QUERY_VALUES",
    "QueryCost",
    "check_query",
]

MAX_QUERY_DEPTH = 20
MAX_ELEM_MATCH_DEPTH = 4
MAX_QUERY_CONDITIONS = 500
MAX_QUERY_VALUES = 1000
MAX_JOINED_FIELDS = 50

_LOGICAL = ("$and", "$or", "$nor")
_LISTS = ("$in", "$nin", "$all")
_NESTING = "$and, $or, $nor, $not and $elemMatch"


@dataclass(frozen=True)
class QueryCost:
    """What a query asks of the database, as :func:`check_query` counted it.

    Attributes:
        conditions: fields, operators and items of ``$and``/``$or``/``$nor``.
        key_value_conditions: the conditions on params and tags (each one a subquery).
    """

    conditions: int
    key_value_conditions: int


def check_query(query: Any, sort: Any = None) -> QueryCost:
    """Refuse (:class:`~keel.errors.QueryTooComplex`) a query, with its sort, beyond keel's
    limits; a malformed query passes, for the evaluators to refuse with their own words."""
    walk = _Walk()
    walk.document(query, 0, 0)
    while walk.pending:
        kind, value, depth, elem, name = walk.pending.pop()
        if kind == "document":
            walk.document(value, depth, elem)
        else:
            walk.field(name, value, depth, elem)
    if isinstance(sort, list | tuple):  # a dotted field (params.x, exp.name) is a join
        walk.joined.update(f"sort {i}" for i, item in enumerate(sort) if "." in _sort_field(item))
        walk.check_joins()
    return QueryCost(walk.conditions, walk.key_value_conditions)


class _Walk:
    """The state of one check: what is still to visit, and the counts so far."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, Any, int, int, str]] = []
        self.conditions = 0
        self.key_value_conditions = 0
        self.joined: set[str] = set()

    def nest(self, depth: int, elem: int) -> None:
        if depth > MAX_QUERY_DEPTH:
            raise QueryTooComplex(
                f"the query nests more than {MAX_QUERY_DEPTH} deep ({_NESTING}); keel allows "
                f"at most {MAX_QUERY_DEPTH}: simplify it"
            )
        if elem > MAX_ELEM_MATCH_DEPTH:
            raise QueryTooComplex(
                f"the query nests $elemMatch more than {MAX_ELEM_MATCH_DEPTH} deep; keel "
                f"allows at most {MAX_ELEM_MATCH_DEPTH}: simplify it"
            )

    def count(self, conditions: int, key_value: bool = False) -> None:
        """Add conditions (``key_value``: on params or tags, each one a subquery)."""
        self.conditions += conditions
        if key_value:
            self.key_value_conditions += conditions
        if self.conditions > MAX_QUERY_CONDITIONS:
            raise QueryTooComplex(
                f"the query holds more than {MAX_QUERY_CONDITIONS} conditions (fields, "
                f"operators and items of $and, $or, $nor); keel allows at most "
                f"{MAX_QUERY_CONDITIONS}: split it, or list values with $in"
            )

    def check_joins(self) -> None:
        if len(self.joined) > MAX_JOINED_FIELDS:
            raise QueryTooComplex(
                f"the query and its sort read {len(self.joined)} metrics and sort fields; "
                f"keel allows at most {MAX_JOINED_FIELDS} (each is a join): narrow it"
            )

    def document(self, query: Any, depth: int, elem: int) -> None:
        """A query dict: field conditions and ``$and``/``$or``/``$nor``/``$not``."""
        if not isinstance(query, Mapping):
            return
        for key, value in query.items():
            if key in _LOGICAL:
                if not isinstance(value, list | tuple):
                    continue
                self.nest(depth + 1, elem)
                self.count(len(value))
                self.pending.extend(("document", item, depth + 1, elem, "") for item in value)
            elif key == "$not":
                self.nest(depth + 1, elem)
                self.count(1)
                self.pending.append(("document", value, depth + 1, elem, ""))
            elif isinstance(key, str) and not key.startswith("$"):
                self.pending.append(("field", value, depth, elem, key))

    def field(self, name: str, spec: Any, depth: int, elem: int) -> None:
        """The condition on one field: a value, or a dict of operators."""
        if _reads_metric(name):
            self.joined.add(name)
            self.check_joins()
        key_value = _reads_key_value(name)
        is_operators = (
            isinstance(spec, Mapping) and spec and all(str(k).startswith("$") for k in spec)
        )
        if not is_operators:
            self.count(1, key_value)
            return
        for op, operand in spec.items():
            if op == "$options":
                continue
            self.count(1, key_value)
            if op in _LISTS and isinstance(operand, list | tuple | set | frozenset):
                if len(operand) > MAX_QUERY_VALUES:
                    raise QueryTooComplex(
                        f"{op} on {name!r} lists {len(operand):,} values; keel allows at most "
                        f"{MAX_QUERY_VALUES:,}: split the query"
                    )
                if op == "$all":  # each value is a condition of its own
                    self.count(max(len(operand) - 1, 0), key_value)
            elif op == "$not" and isinstance(operand, Mapping):
                self.nest(depth + 1, elem)
                self.pending.append(("field", operand, depth + 1, elem, name))
            elif op == "$elemMatch" and isinstance(operand, Mapping):
                self.nest(depth + 1, elem + 1)
                operators = [str(k) for k in operand if str(k).startswith("$")]
                if operators and not set(operators) & set(_LOGICAL):
                    self.pending.append(("field", operand, depth + 1, elem + 1, name))
                else:  # a query over the elements' fields
                    self.elements(name, operand, depth + 1, elem + 1)

    def elements(self, name: str, query: Mapping[str, Any], depth: int, elem: int) -> None:
        for key, value in query.items():
            if key in _LOGICAL and isinstance(value, list | tuple):
                self.nest(depth + 1, elem)
                self.count(len(value))
                for item in value:
                    if isinstance(item, Mapping):
                        self.elements(name, item, depth + 1, elem)
            elif isinstance(key, str) and not key.startswith("$"):
                self.pending.append(("field", value, depth, elem, f"{name}.{key}"))


def _sort_field(item: Any) -> str:
    """The field of a sort item (``"-name"``, ``("metrics.auc", -1)``), or ``""``."""
    if isinstance(item, str):
        return item
    if isinstance(item, list | tuple) and item:
        return str(item[0])
    return ""


def _reads_metric(name: str) -> bool:
    """Whether a field reads a run's metric (``metrics.auc``, ``run.metrics.auc``): the SQL
    store joins one table per such field."""
    return _reads(name, "metrics")


def _reads_key_value(name: str) -> bool:
    """Whether a field reads params or tags (``params.lr``, ``exp.tags.team``)."""
    return _reads(name, "params") or _reads(name, "tags")


def _reads(name: str, prefix: str) -> bool:
    parts = name.split(".", 2)
    return parts[0] == prefix or (len(parts) > 2 and parts[1] == prefix)
