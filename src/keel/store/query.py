"""MongoDB-style queries over keel's records, translated to parameterised SQL.

A query is a dict such as ``{"metrics.auc": {"$gt": 0.9}, "params.model": "rf"}``. Each
field name resolves to a column of the record, a key of its params, tags or latest
metrics, or a field of a related record (``exp.name``, ``run.params.lr``, ``model.tags.team``),
each joined once with LEFT OUTER JOIN. Every value reaches the database as a bound
parameter; field names only pick columns and keys, and keys are bound too.

Semantics follow MongoDB: a missing field matches ``$ne``, ``$nin``, ``$not`` and
``{"$exists": False}`` and nothing else; comparisons never match across types (a number
never equals or orders with a text column, a bool matches no attribute). The databases are
kept from deciding otherwise: a type mismatch is decided here, before any SQL, and text is
compared and sorted by code point (``COLLATE "C"`` on PostgreSQL, whatever the database's
locale), as SQLite and Python do. Operands and patterns are checked by the same functions
as the in-Python matcher (:mod:`keel.store.matching`), so both refuse the same queries.

A query is checked against keel's limits (:mod:`keel.store.limits`) before any SQL is
built. Within them the SQL stays within the databases' own: an attribute's ``$in`` is one
``IN`` list, a param's or tag's one subquery, and long ``AND``/``OR`` lists are grouped
(√n groups of √n), so SQLite's expression tree stays shallow whatever their length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

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
from keel.store.jsonsql import Node, RowNode
from keel.store.limits import check_query
from keel.store.matching import FIELD_OPERATORS as _FIELD_OPERATORS
from keel.store.matching import attribute_operand, check_text, json_operand, number_operand
from keel.store.matching import regex_of as _regex_of
from keel.store.matching import sort_item as _sort_item
from keel.store.matching import sort_list as _sort_list
from keel.store.values import decode_value as decode_value  # re-exported: sql.py, the server
from keel.store.values import encode_value as encode_value

Sort = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class KeyValue:
    """A key/value table joined to the record: params or tags."""

    table: FromClause
    owner_column: str


@dataclass
class Target:
    """What one kind of record offers to queries.

    Attributes:
        table: the record's table (an alias when the target is reached through a relation).
        attributes: field name → column.
        key_values: prefix (``params``, ``tags``) → key/value table.
        metrics_owner: the run id column whose latest metrics ``metrics.*`` reads, if any.
        relations: prefix → (factory of the related target, join condition builder).
    """

    table: FromClause
    attributes: dict[str, ColumnElement[Any]]
    key_values: dict[str, KeyValue] = field(default_factory=dict)
    metrics_owner: ColumnElement[Any] | None = None
    relations: dict[str, Callable[[], tuple[Target, Callable[[Target], ColumnElement[bool]]]]] = (
        field(default_factory=dict)
    )
    self_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Field:
    """A resolved field: its text and numeric value expressions and its presence test."""

    text: ColumnElement[Any]
    number: ColumnElement[Any] | None
    kind: ColumnElement[Any] | None  # JSON type name of a key/value entry
    present: ColumnElement[bool]
    is_attribute: bool
    family: str = "text"  # of an attribute's column: "number" or "text"
    floats: bool = False  # the column holds floats (metrics)


class QueryBuilder:
    """Builds one SELECT of record ids for a query, sort and page."""

    def __init__(self, target: Target, latest_metrics: FromClause, dialect: str = "sqlite") -> None:
        self._root = target
        self._dialect = dialect
        self._latest_metrics = latest_metrics
        self._from: FromClause = target.table
        self._fields: dict[str, _Field] = {}
        self._targets: dict[str, Target] = {"": target}
        self._fenced = False  # params and tags subqueries kept from the planner's joins

    # --- public --------------------------------------------------------------------------

    def select(
        self,
        id_column: ColumnElement[Any],
        query: Mapping[str, Any] | None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
        extra: ColumnElement[bool] | None = None,
    ) -> Select[Any]:
        """The SELECT of matching ids, sorted and paged."""
        if query is not None and not isinstance(query, Mapping):
            raise InvalidInput(f"a query must be a dict, got {type(query).__name__}")
        cost = check_query(query, sort)
        # PostgreSQL turns every EXISTS ANDed at the top into a join, and plans joins in
        # time that grows far faster than their number (150 conditions on params: 10 s to
        # plan 3 runs); OFFSET 0 keeps a subquery a subquery, which is slower to run for
        # a few conditions and much faster to plan for many
        self._fenced = self._dialect == "postgresql" and cost.key_value_conditions > _PG_JOINS
        try:
            condition = self._document(query or {})
        except RecursionError:  # the limits keep queries far from this; never a 500
            raise QueryTooComplex(
                "the query nests too deep to build: simplify it (fewer nested $and, $or, "
                "$nor, $not and $elemMatch)"
            ) from None
        if extra is not None:
            condition = and_(extra, condition)
        order: list[Any] = []
        for item in _sort_list(sort):
            name, direction = _sort_item(item)
            resolved = self._field(name)
            if resolved.number is not None:
                column = resolved.number
            else:
                column = _ordered(resolved) if resolved.family == "text" else resolved.text
            order.append(column.desc().nulls_last() if direction < 0 else column.asc().nulls_last())
            if resolved.number is not None and not resolved.is_attribute:
                text = _ordered(resolved)
                order.append(text.desc().nulls_last() if direction < 0 else text.asc().nulls_last())
        order.append(id_column)
        stmt = select(id_column).select_from(self._from).where(condition).order_by(*order)
        if limit is not None:
            if limit < 0:
                raise InvalidInput(f"limit must be 0 or more, got {limit}")
            stmt = stmt.limit(limit)
        if offset:
            if offset < 0:
                raise InvalidInput(f"offset must be 0 or more, got {offset}")
            stmt = stmt.offset(offset)
        return stmt

    # --- documents and operators ---------------------------------------------------------

    def _document(self, query: Mapping[str, Any]) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for key, value in query.items():
            if not isinstance(key, str):
                raise InvalidInput(f"query keys must be strings, got {key!r}")
            if key in ("$and", "$or", "$nor"):
                parts.append(self._logical(key, value))
            elif key == "$not":
                if not isinstance(value, Mapping):
                    raise InvalidInput("top-level $not takes a query dict")
                parts.append(not_(self._document(value)))
            elif key.startswith("$"):
                raise InvalidInput(
                    f"unknown query operator {key!r}: use $and, $or, $nor or a field name"
                )
            else:
                parts.append(self._condition(key, value))
        return every(parts)

    def _logical(self, operator: str, value: Any) -> ColumnElement[bool]:
        subs = [self._document(item) for item in subqueries(operator, value)]
        if operator == "$and":
            return every(subs)
        if operator == "$or":
            return some(subs)
        return not_(some(subs))

    def _condition(self, name: str, spec: Any) -> ColumnElement[bool]:
        doc = self._resolve_doc(self._root, name)
        if doc is not None:
            return _DocConditions(self, name, doc).condition(spec)
        resolved = self._field(name)
        if isinstance(spec, Mapping) and spec and all(str(k).startswith("$") for k in spec):
            return self._operators(name, resolved, spec)
        if isinstance(spec, re.Pattern):
            return self._regex(resolved, _regex_of(name, spec, None))
        return self._eq(name, resolved, spec)

    def _operators(
        self, name: str, resolved: _Field, spec: Mapping[str, Any]
    ) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for op, operand in spec.items():
            if op not in _FIELD_OPERATORS:
                raise InvalidInput(
                    f"unknown operator {op!r} on {name!r}: use one of "
                    + ", ".join(_FIELD_OPERATORS)
                )
            if op == "$eq":
                parts.append(self._eq(name, resolved, operand))
            elif op == "$ne":
                parts.append(not_(self._eq(name, resolved, operand)))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                parts.append(self._compare(name, resolved, op, operand))
            elif op in ("$in", "$nin"):
                if not isinstance(operand, list | tuple | set | frozenset):
                    raise InvalidInput(f"{op} on {name!r} takes a list, got {operand!r}")
                matches = self._in(name, resolved, operand)
                parts.append(matches if op == "$in" else not_(matches))
            elif op == "$exists":
                parts.append(resolved.present if operand else not_(resolved.present))
            elif op == "$size":
                size_operand(operand, name)
                parts.append(false())  # a record attribute is never a list
            elif op == "$elemMatch":
                elem_match_operand(operand, name)
                parts.append(false())
            elif op == "$all":
                items = all_operand(operand, name)
                parts.append(
                    every([self._eq(name, resolved, v) for v in items]) if items else false()
                )
            elif op == "$regex":
                pattern = _regex_of(name, operand, spec.get("$options"))
                parts.append(self._regex(resolved, pattern))
            elif op == "$options":
                if "$regex" not in spec:
                    raise InvalidInput(f"$options on {name!r} needs $regex beside it")
            else:  # $not
                if isinstance(operand, re.Pattern):
                    parts.append(not_(self._regex(resolved, _regex_of(name, operand, None))))
                elif isinstance(operand, Mapping) and operand:
                    parts.append(not_(self._operators(name, resolved, operand)))
                else:
                    raise InvalidInput(f"$not on {name!r} takes an operator dict or a regex")
        return every(parts)

    def _in(self, name: str, resolved: _Field, values: Any) -> ColumnElement[bool]:
        """``$in``: an attribute is in one SQL ``IN`` list (however long, one expression);
        anything else is any of its equalities."""
        if not resolved.is_attribute:
            return some([self._eq(name, resolved, item) for item in values])
        operands: list[Any] = []
        missing = False
        for item in values:  # the checks and refusals of _eq, in the same order
            if item is None:
                missing = True
                continue
            if isinstance(item, Mapping | list | tuple | set):
                raise InvalidInput(f"cannot compare a record attribute with {item!r}")
            family, operand = attribute_operand(item, name, resolved.floats)
            if family == resolved.family:  # across types, a bool, a NaN: never equal
                operands.append(operand)
        parts = [not_(resolved.present)] if missing else []
        if operands:
            parts.append(and_(resolved.present, resolved.text.in_(operands)))
        return some(parts)

    def _eq(self, name: str, resolved: _Field, value: Any) -> ColumnElement[bool]:
        if value is None:
            return not_(resolved.present)
        if isinstance(value, Mapping | list | tuple | set) and resolved.is_attribute:
            raise InvalidInput(f"cannot compare a record attribute with {value!r}")
        if resolved.is_attribute:
            family, operand = attribute_operand(value, name, resolved.floats)
            if family != resolved.family:  # across types, a bool, a NaN: never equal
                return false()
            return and_(resolved.present, resolved.text == operand)
        if isinstance(value, bool):
            assert resolved.kind is not None
            return and_(
                resolved.present,
                resolved.kind == "bool",
                resolved.text == ("true" if value else "false"),
            )
        if isinstance(value, int | float):
            target = resolved.number if resolved.number is not None else resolved.text
            if value != value:  # NaN equals nothing
                return false()
            number = number_operand(value, name)
            return and_(resolved.present, target.is_not(None), target == number)
        return and_(resolved.present, resolved.text == json_operand(value, name))

    def _compare(self, name: str, resolved: _Field, op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, bool) or value is None or isinstance(value, Mapping | list):
            raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
        if not resolved.is_attribute:  # a param or tag: numbers by value_num, text by code point
            if isinstance(value, int | float):
                if value != value:
                    return false()
                assert resolved.number is not None
                column, operand = resolved.number, number_operand(value, name)
                return and_(resolved.present, column.is_not(None), _cmp(column, op, operand))
            if isinstance(value, str):
                assert resolved.kind is not None
                text = check_text(value, f"the value on {name!r}")
                return and_(
                    resolved.present, resolved.kind == "str", _cmp(_ordered(resolved), op, text)
                )
            raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
        family, operand = attribute_operand(value, name, resolved.floats)
        if family != resolved.family:
            return false()
        column = _ordered(resolved) if family == "text" else resolved.text
        return and_(resolved.present, column.is_not(None), _cmp(column, op, operand))

    def _regex(self, resolved: _Field, pattern: str) -> ColumnElement[bool]:
        """``pattern`` as :func:`keel.store.matching.regex_of` wrote it: the same text for
        SQLite's REGEXP (Python's re) and PostgreSQL's ``~``; a number never matches."""
        if resolved.is_attribute and resolved.family != "text":
            return false()
        text = resolved.text
        return and_(resolved.present, text.is_not(None), text.regexp_match(pattern))

    # --- field resolution ----------------------------------------------------------------

    def _field(self, name: str) -> _Field:
        if name in self._fields:
            return self._fields[name]
        resolved = self._resolve(self._root, "", name)
        self._fields[name] = resolved
        return resolved

    def _resolve(self, target: Target, path: str, name: str) -> _Field:
        if not name:
            raise InvalidInput("empty field name in query")
        check_text(name, "the query field")
        if name in target.attributes:
            column = target.attributes[name]
            return _Field(column, None, None, column.is_not(None), True, _family_of(column))
        head, _, rest = name.partition(".")
        if head in target.self_names and rest:
            return self._resolve(target, f"{path}{head}.", rest)
        if head in target.key_values and rest:
            return self._join_key_value(target, path, head, rest)
        if head == "metrics" and rest and target.metrics_owner is not None:
            return self._join_metric(target, path, rest)
        if head in target.relations and rest:
            related = self._related(target, path, head)
            return self._resolve(related, f"{path}{head}.", rest)
        allowed = sorted(target.attributes) + [f"{p}.*" for p in target.key_values]
        if target.metrics_owner is not None:
            allowed.append("metrics.*")
        allowed += [f"{p}.*" for p in target.relations]
        raise InvalidInput(f"unknown query field {path + name!r}: use one of {', '.join(allowed)}")

    def _resolve_doc(self, target: Target, name: str, path: str = "") -> _Doc | None:
        """The params or tags field ``name`` reaches (None: another kind of field)."""
        if not name or name in target.attributes:
            return None
        check_text(name, "the query field")
        head, _, rest = name.partition(".")
        if not rest:
            return None
        if head in target.self_names:
            return self._resolve_doc(target, rest, f"{path}{head}.")
        if head in target.key_values:
            kv = target.key_values[head]
            owner = target.table.c.id
            return _Doc([self._row_source(kv, owner, key, keys) for key, keys in splits(rest)])
        if head == "metrics" and target.metrics_owner is not None:
            return None
        if head in target.relations:
            return self._resolve_doc(self._related(target, path, head), rest, f"{path}{head}.")
        return None

    def _row_source(
        self, kv: KeyValue, owner: ColumnElement[Any], key: str, keys: tuple[str, ...]
    ) -> _Source:
        dialect = self._dialect

        def source(test: Callable[[Node], ColumnElement[bool]]) -> ColumnElement[bool]:
            row = kv.table.alias()
            node: Node = RowNode(dialect, row.c.value, row.c.value_type, row.c.value_num)
            for part in keys:
                node = node.child(part)
            found = (
                select(literal(1))
                .select_from(row)
                .where(row.c[kv.owner_column] == owner, row.c.key == literal(key), test(node))
                .correlate_except(row)
            )
            return (found.offset(0) if self._fenced else found).exists()

        return source

    def _related(self, target: Target, path: str, head: str) -> Target:
        key = f"{path}{head}"
        if key not in self._targets:
            related, on = target.relations[head]()
            self._from = self._from.outerjoin(related.table, on(related))
            self._targets[key] = related
        return self._targets[key]

    def _join_key_value(self, target: Target, path: str, prefix: str, key: str) -> _Field:
        kv = target.key_values[prefix]
        alias = kv.table.alias()
        owner = target.table.c.id
        self._from = self._from.outerjoin(
            alias, and_(alias.c[kv.owner_column] == owner, alias.c.key == literal(key))
        )
        return _Field(
            alias.c.value, alias.c.value_num, alias.c.value_type, alias.c.key.is_not(None), False
        )

    def _join_metric(self, target: Target, path: str, key: str) -> _Field:
        assert target.metrics_owner is not None
        alias = self._latest_metrics.alias()
        self._from = self._from.outerjoin(
            alias, and_(alias.c.run_id == target.metrics_owner, alias.c.key == literal(key))
        )
        return _Field(
            alias.c.value, alias.c.value, None, alias.c.key.is_not(None), True, "number", True
        )


#: conditions joined by one AND (OR) before they are grouped: more in one chain make SQLite's
#: expression tree as deep as they are many (it refuses 1,000)
_CHAIN = 32
#: conditions on params and tags up to which PostgreSQL may turn their subqueries into joins
#: (measured on 20,000 runs: 1 to 3 conditions run 2-3x faster as joins, 8 and more faster
#: as subqueries, which also plan in linear time: 250 conditions in 1.3 s, against 61 s)
_PG_JOINS = 8


def every(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``parts`` ANDed (TRUE for none), in groups, so that the expression stays shallow."""
    return _joined(and_, true(), list(parts))


def some(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """``parts`` ORed (FALSE for none), in groups, so that the expression stays shallow."""
    return _joined(or_, false(), list(parts))


def _joined(
    join: Callable[..., ColumnElement[bool]],
    empty: ColumnElement[bool],
    parts: list[ColumnElement[bool]],
) -> ColumnElement[bool]:
    if len(parts) <= _CHAIN:
        return join(empty, *parts)
    # √n groups of √n: a SQLite expression tree 2√n deep instead of n (60 for 1,000)
    size = math.isqrt(len(parts) - 1) + 1
    return join(*(_Group(join(*parts[i : i + size])) for i in range(0, len(parts), size)))


class _Group(ColumnElement[bool]):
    """A condition in parentheses that SQLAlchemy keeps (it drops a ``Grouping`` of an OR
    inside an OR, and SQLite's parser then chains them all again)."""

    inherit_cache = True
    _is_implicitly_boolean = True  # a condition as it is, not "(…) = 1" on SQLite
    # SQLAlchemy's cache key walks this (a list, by its protocol)
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, element: ColumnElement[bool]) -> None:
        self.element = element
        self.type = element.type


@compiles(_Group)
def _group(element: _Group, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.element, **kw)})"  # constant text around SQL


def _cmp(column: ColumnElement[Any], op: str, operand: Any) -> ColumnElement[bool]:
    if op == "$gt":
        return column > operand
    if op == "$gte":
        return column >= operand
    if op == "$lt":
        return column < operand
    return column <= operand


def _family_of(column: ColumnElement[Any]) -> str:
    """``number`` for an integer or float column, else ``text``."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return "text"
    return "number" if python_type in (int, float) else "text"


def _ordered(resolved: _Field) -> ColumnElement[Any]:
    """The text of a field, compared and sorted by code point on every database."""
    return _CodePoints(resolved.text)


class _CodePoints(ColumnElement[Any]):
    """``text COLLATE "C"`` on PostgreSQL (whose default collation follows the locale:
    ``'a' < 'B'`` in en_US), the text itself elsewhere (SQLite compares code points)."""

    inherit_cache = True
    # SQLAlchemy's cache key walks this (a list, by its protocol)
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, element: ColumnElement[Any]) -> None:
        self.element = element
        self.type = element.type


@compiles(_CodePoints)
def _code_points(element: _CodePoints, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.element, **kw))


@compiles(_CodePoints, "postgresql")
def _code_points_postgresql(element: _CodePoints, compiler: Any, **kw: Any) -> str:
    return f'{compiler.process(element.element, **kw)} COLLATE "C"'  # constant text


# --- params and tags: MongoDB's meaning over JSON values (keel.store.documents) ------------

#: one place a field's value may be: given a test of a node, the condition that it holds there
_Source = Callable[[Callable[[Node], ColumnElement[bool]]], ColumnElement[bool]]


@dataclass(frozen=True)
class _Doc:
    """A field of params or tags (or of a list element): the places its value may be."""

    sources: list[_Source]

    def any(self, test: Callable[[Node], ColumnElement[bool]]) -> ColumnElement[bool]:
        return some([source(test) for source in self.sources])


def _node_source(node: Node) -> _Source:
    return lambda test: test(node)


def _leaf_eq(node: Node, operand: Operand) -> ColumnElement[bool]:
    """The value itself (not its elements) equals the operand."""
    kind = operand.kind
    if kind == "null":
        return node.is_null()
    if kind == "bool":
        return node.bool_is(operand.value)
    if kind == "number":
        return node.number_compare("=", operand.value)
    if kind == "string":
        return and_(node.is_string(), node.string() == operand.value)
    if kind == "date":
        return and_(node.is_date(), node.date_text() == operand.value)
    if kind == "container":
        if not operand.strict and not isinstance(node, RowNode):
            return false()  # JSON inside a value never holds NaN or infinity
        return node.container_equals(operand.value)
    return false()  # nan


def _leaf_in(node: Node, operands: Sequence[Operand]) -> ColumnElement[bool]:
    """The value itself equals one of the operands (none null): the strings in one IN."""
    strings = [o.value for o in operands if o.kind == "string"]
    parts = [_leaf_eq(node, o) for o in operands if o.kind != "string"]
    if len(strings) > 1:
        parts.append(and_(node.is_string(), node.string().in_(strings)))
    elif strings:
        parts.append(_leaf_eq(node, Operand("string", strings[0])))
    return some(parts)


_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _leaf_compare(node: Node, op: str, operand: Operand) -> ColumnElement[bool]:
    if operand.kind == "number":
        return node.number_compare(_SQL_OPS[op], operand.value)
    if operand.kind == "string":
        return and_(node.is_string(), _cmp(_CodePoints(node.string()), op, operand.value))
    if operand.kind == "date":
        return and_(node.is_date(), _cmp(_CodePoints(node.date_text()), op, operand.value))
    return false()


def _itself_or_element(
    node: Node, test: Callable[[Node], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """MongoDB's reach into lists: the value passes, or it is a list and an element does."""
    return or_(test(node), _some_element(node, test))


def _some_element(node: Node, test: Callable[[Node], ColumnElement[bool]]) -> ColumnElement[bool]:
    table, element = node.elements()
    # correlated with every enclosing select (the row and outer elements), not only the next
    found = select(literal(1)).select_from(table).where(test(element)).correlate_except(table)
    found = found.exists()
    return and_(node.is_array(), found)


class _DocConditions:
    """The conditions of one params or tags field (see keel.store.documents)."""

    def __init__(self, builder: QueryBuilder, name: str, doc: _Doc) -> None:
        self.builder = builder
        self.name = name
        self.doc = doc

    def condition(self, spec: Any) -> ColumnElement[bool]:
        if (
            isinstance(spec, Mapping)
            and spec
            and all(str(k).startswith("$") for k in spec)
            and not (len(spec) == 1 and "$date" in spec)
        ):
            return self.operators(spec)
        if isinstance(spec, re.Pattern):
            return self.regex(_regex_of(self.name, spec, None))
        return self.eq(spec)

    def eq(self, value: Any) -> ColumnElement[bool]:
        operand = operand_of(value, self.name)
        if operand.kind == "null":
            present = self.doc.any(lambda node: node.present())
            nulls = self.doc.any(lambda node: _itself_or_element(node, lambda n: n.is_null()))
            return or_(not_(present), nulls)
        return self.doc.any(lambda node: _itself_or_element(node, lambda n: _leaf_eq(n, operand)))

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, bool) or value is None or isinstance(value, list | tuple):
            raise InvalidInput(f"{op} on {self.name!r} takes a number or a string, got {value!r}")
        if isinstance(value, Mapping) and "$date" not in value:
            raise InvalidInput(f"{op} on {self.name!r} takes a number or a string, got {value!r}")
        operand = operand_of(value, self.name)
        return self.doc.any(
            lambda node: _itself_or_element(node, lambda n: _leaf_compare(n, op, operand))
        )

    def regex(self, pattern: str) -> ColumnElement[bool]:
        def test(node: Node) -> ColumnElement[bool]:
            return and_(node.is_string(), node.string().regexp_match(pattern))

        return self.doc.any(lambda node: _itself_or_element(node, test))

    def operators(self, spec: Mapping[str, Any]) -> ColumnElement[bool]:
        name = self.name
        parts: list[ColumnElement[bool]] = []
        for op, operand in spec.items():
            if op not in _FIELD_OPERATORS:
                raise InvalidInput(
                    f"unknown operator {op!r} on {name!r}: use one of "
                    + ", ".join(_FIELD_OPERATORS)
                )
            if op == "$eq":
                parts.append(self.eq(operand))
            elif op == "$ne":
                parts.append(not_(self.eq(operand)))
            elif op in _SQL_OPS:
                parts.append(self.compare(op, operand))
            elif op in ("$in", "$nin"):
                if not isinstance(operand, list | tuple | set | frozenset):
                    raise InvalidInput(f"{op} on {name!r} takes a list, got {operand!r}")
                matches = self.any_of(operand)
                parts.append(matches if op == "$in" else not_(matches))
            elif op == "$all":
                items = all_operand(operand, name)
                parts.append(every([self.eq(item) for item in items]) if items else false())
            elif op == "$exists":
                present = self.doc.any(lambda node: node.present())
                parts.append(present if operand else not_(present))
            elif op == "$size":
                size = size_operand(operand, name)
                parts.append(
                    self.doc.any(
                        lambda node, n=size: and_(node.is_array(), node.array_length() == n)
                    )
                )
            elif op == "$elemMatch":
                parts.append(self.elem_match(operand))
            elif op == "$regex":
                parts.append(self.regex(_regex_of(name, operand, spec.get("$options"))))
            elif op == "$options":
                if "$regex" not in spec:
                    raise InvalidInput(f"$options on {name!r} needs $regex beside it")
            else:  # $not
                if isinstance(operand, re.Pattern):
                    parts.append(not_(self.regex(_regex_of(name, operand, None))))
                elif isinstance(operand, Mapping) and operand:
                    parts.append(not_(self.operators(operand)))
                else:
                    raise InvalidInput(f"$not on {name!r} takes an operator dict or a regex")
        return every(parts)

    def any_of(self, values: Any) -> ColumnElement[bool]:
        """``$in``: one search of the field's values for any operand (not one per operand:
        a list of 1,000 is one subquery), plus the meaning of null when it is listed."""
        operands = [operand_of(value, self.name) for value in values]
        others = [o for o in operands if o.kind != "null"]
        parts = [self.eq(None)] if len(others) < len(operands) else []
        if others:
            parts.append(
                self.doc.any(lambda node: _itself_or_element(node, lambda n: _leaf_in(n, others)))
            )
        return some(parts)

    def elem_match(self, operand: Any) -> ColumnElement[bool]:
        is_operators, spec = elem_match_operand(operand, self.name)
        builder, name = self.builder, self.name
        # the element's test is built once per element node, so check the spec up front
        _DocConditions(builder, name, _Doc([])).elem_test(is_operators, spec)
        return self.doc.any(
            lambda node: _some_element(
                node, lambda element: self.elem_test(is_operators, spec, element)
            )
        )

    def elem_test(
        self, is_operators: bool, spec: Mapping[str, Any], element: Node | None = None
    ) -> ColumnElement[bool]:
        builder = self.builder
        if is_operators:
            sources = [] if element is None else [_node_source(element)]
            return _DocConditions(builder, self.name, _Doc(sources)).operators(spec)
        return _ElementQuery(builder, self.name, element).document(spec)


class _ElementQuery:
    """A query on the fields of a list element (``$elemMatch: {"x": 1}``)."""

    def __init__(self, builder: QueryBuilder, name: str, element: Node | None) -> None:
        self.builder = builder
        self.name = name
        self.element = element

    def document(self, query: Mapping[str, Any]) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for key, value in query.items():
            if not isinstance(key, str):
                raise InvalidInput(f"query keys must be strings, got {key!r}")
            if key in ("$and", "$or", "$nor"):
                subs = [self.document(item) for item in subqueries(key, value)]
                joined = every(subs) if key == "$and" else some(subs)
                parts.append(not_(joined) if key == "$nor" else joined)
            elif key.startswith("$"):
                raise InvalidInput(f"unknown query operator {key!r} in $elemMatch on {self.name!r}")
            else:
                check_text(key, "the query field")
                keys = key.split(".")
                sources: list[_Source] = []
                if self.element is not None and all(
                    k and not k.startswith("$") and '"' not in k for k in keys
                ):
                    node = self.element
                    for k in keys:
                        node = node.child(k)
                    sources.append(_node_source(node))
                field_name = f"{self.name}.{key}"
                parts.append(
                    _DocConditions(self.builder, field_name, _Doc(sources)).condition(value)
                )
        return every(parts)
