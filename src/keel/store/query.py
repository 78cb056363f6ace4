"""MongoDB-style queries over keel's records, translated to parameterised SQL.

A query is a dict such as ``{"metrics.auc": {"$gt": 0.9}, "params.model": "rf"}``. Each
field name resolves to a column of the record, a key of its params, tags or latest
metrics, or a field of a related record (``exp.name``, ``run.params.lr``, ``model.tags.team``),
each joined once with LEFT OUTER JOIN. Every value reaches the database as a bound
parameter; field names only pick columns and keys, and keys are bound too.

Semantics follow MongoDB: a missing field matches ``$ne``, ``$nin``, ``$not`` and
``{"$exists": False}`` and nothing else; comparisons never match across types.
"""

from __future__ import annotations

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

from keel.errors import InvalidInput
from keel.store.matching import FIELD_OPERATORS as _FIELD_OPERATORS
from keel.store.matching import flags_of as _flags_of
from keel.store.matching import sort_item as _sort_item
from keel.store.values import decode_value as decode_value  # re-exported: sql.py, the server
from keel.store.values import encode_text
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


class QueryBuilder:
    """Builds one SELECT of record ids for a query, sort and page."""

    def __init__(self, target: Target, latest_metrics: FromClause) -> None:
        self._root = target
        self._latest_metrics = latest_metrics
        self._from: FromClause = target.table
        self._fields: dict[str, _Field] = {}
        self._targets: dict[str, Target] = {"": target}

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
        condition = self._document(query or {})
        if extra is not None:
            condition = and_(extra, condition)
        order: list[Any] = []
        for item in sort or ():
            name, direction = _sort_item(item)
            resolved = self._field(name)
            column = resolved.number if resolved.number is not None else resolved.text
            order.append(column.desc().nulls_last() if direction < 0 else column.asc().nulls_last())
            if resolved.number is not None and not resolved.is_attribute:
                text = resolved.text
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
        return and_(true(), *parts)

    def _logical(self, operator: str, value: Any) -> ColumnElement[bool]:
        if not isinstance(value, list | tuple) or not value:
            raise InvalidInput(f"{operator} takes a non-empty list of queries")
        subs = []
        for item in value:
            if not isinstance(item, Mapping):
                raise InvalidInput(f"{operator} takes a list of query dicts, got {item!r}")
            subs.append(self._document(item))
        if operator == "$and":
            return and_(*subs)
        if operator == "$or":
            return or_(*subs)
        return not_(or_(*subs))

    def _condition(self, name: str, spec: Any) -> ColumnElement[bool]:
        resolved = self._field(name)
        if isinstance(spec, Mapping) and spec and all(str(k).startswith("$") for k in spec):
            return self._operators(name, resolved, spec)
        if isinstance(spec, re.Pattern):
            return self._regex(resolved, spec.pattern, _flags_of(spec))
        return self._eq(resolved, spec)

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
                parts.append(self._eq(resolved, operand))
            elif op == "$ne":
                parts.append(not_(self._eq(resolved, operand)))
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                parts.append(self._compare(name, resolved, op, operand))
            elif op in ("$in", "$nin"):
                if not isinstance(operand, list | tuple | set | frozenset):
                    raise InvalidInput(f"{op} on {name!r} takes a list, got {operand!r}")
                matches = or_(false(), *(self._eq(resolved, item) for item in operand))
                parts.append(matches if op == "$in" else not_(matches))
            elif op == "$exists":
                parts.append(resolved.present if operand else not_(resolved.present))
            elif op == "$regex":
                pattern = operand.pattern if isinstance(operand, re.Pattern) else operand
                if not isinstance(pattern, str):
                    raise InvalidInput(f"$regex on {name!r} takes a string pattern")
                flags = spec.get("$options", "")
                if isinstance(operand, re.Pattern):
                    flags += _flags_of(operand)
                parts.append(self._regex(resolved, pattern, flags))
            elif op == "$options":
                if "$regex" not in spec:
                    raise InvalidInput(f"$options on {name!r} needs $regex beside it")
            else:  # $not
                if isinstance(operand, re.Pattern):
                    parts.append(not_(self._regex(resolved, operand.pattern, _flags_of(operand))))
                elif isinstance(operand, Mapping) and operand:
                    parts.append(not_(self._operators(name, resolved, operand)))
                else:
                    raise InvalidInput(f"$not on {name!r} takes an operator dict or a regex")
        return and_(true(), *parts)

    def _eq(self, resolved: _Field, value: Any) -> ColumnElement[bool]:
        if value is None:
            return not_(resolved.present)
        if isinstance(value, Mapping | list | tuple | set) and resolved.is_attribute:
            raise InvalidInput(f"cannot compare a record attribute with {value!r}")
        if resolved.is_attribute:
            return and_(resolved.present, resolved.text == _attribute_value(value))
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
            return and_(resolved.present, target.is_not(None), target == float(value))
        return and_(resolved.present, resolved.text == encode_text(value))

    def _compare(self, name: str, resolved: _Field, op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, bool) or value is None or isinstance(value, Mapping | list):
            raise InvalidInput(f"{op} on {name!r} takes a number or a string, got {value!r}")
        if isinstance(value, int | float):
            if value != value:
                return false()
            column = resolved.number if resolved.number is not None else resolved.text
            operand: Any = float(value) if not resolved.is_attribute else value
        elif isinstance(value, str):
            column = resolved.text
            operand = value
            if resolved.kind is not None:
                return and_(resolved.present, resolved.kind == "str", _cmp(column, op, operand))
        else:
            column, operand = resolved.text, _attribute_value(value)
        return and_(resolved.present, column.is_not(None), _cmp(column, op, operand))

    def _regex(self, resolved: _Field, pattern: str, flags: str) -> ColumnElement[bool]:
        unknown = set(flags) - set("imsx")
        if unknown:
            raise InvalidInput(f"unknown $options {''.join(sorted(unknown))!r}: use i, m, s or x")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidInput(f"invalid $regex {pattern!r}: {exc}") from None
        text = resolved.text
        # Inline flags work the same in Python's re (SQLite's REGEXP) and PostgreSQL's AREs.
        inline = "".join(sorted(set(flags)))
        if inline:
            pattern = f"(?{inline}){pattern}"
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
        if name in target.attributes:
            column = target.attributes[name]
            return _Field(column, None, None, column.is_not(None), True)
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
        return _Field(alias.c.value, alias.c.value, None, alias.c.key.is_not(None), True)


def _cmp(column: ColumnElement[Any], op: str, operand: Any) -> ColumnElement[bool]:
    if op == "$gt":
        return column > operand
    if op == "$gte":
        return column >= operand
    if op == "$lt":
        return column < operand
    return column <= operand


def _attribute_value(value: Any) -> Any:
    return value
