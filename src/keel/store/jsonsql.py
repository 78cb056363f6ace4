"""JSON values inside SQL rows, as SQLite and PostgreSQL reach into them.

A param or tag is kept as (text, type name, float copy) (:mod:`keel.store.values`); its
lists and dicts are JSON text. A query that reaches into one (``params.ns.key``, an element
of ``tags.labels``) needs the value's parts as SQL expressions. A :class:`Node` is one such
value: a whole param or tag row (:class:`RowNode`, read from its columns so plain values
keep their indexes), or a part of a JSON value (:class:`SqliteNode`: the JSON text and a
JSON path, run by ``json_type`` / ``json_extract`` / ``json_each``; :class:`PostgresNode`:
a ``jsonb`` expression, run by ``jsonb_typeof`` / ``jsonb_extract_path`` /
``jsonb_array_elements``).

Every key, path and operand is a bound parameter; nothing here writes SQL text. Nothing
may fail on a value of another type: each function is guarded so that asking a string for
its elements or a number for its ``$date`` gives NULL or no rows, never an error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import Grouping

from keel.store.values import DATE_KEY, DATE_WIDTH

__all__ = ["Node", "PostgresNode", "RowNode", "SqliteNode", "json_node"]


class Node:
    """One JSON value of a row, as SQL expressions (all conditions are never NULL-only
    traps: callers AND them with the type tests)."""

    def present(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_string(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def string(self) -> ColumnElement[Any]:
        raise NotImplementedError

    def is_number(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def number_compare(self, op: str, number: float) -> ColumnElement[bool]:
        """The value is a number and ``value op number`` (``op``: = > >= < <=)."""
        raise NotImplementedError

    def bool_is(self, value: bool) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_null(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_array(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_date(self) -> ColumnElement[bool]:
        return self.child(DATE_KEY).is_string()

    def date_text(self) -> ColumnElement[Any]:
        """The first 26 characters of a datetime's ISO text (they order as the instants)."""
        return func.substr(self.child(DATE_KEY).string(), 1, DATE_WIDTH)

    def container_equals(self, text: str) -> ColumnElement[bool]:
        """The value is a list or dict whose JSON is ``text`` (compact, sorted keys)."""
        raise NotImplementedError

    def child(self, key: str) -> Node:
        raise NotImplementedError

    def elements(self) -> tuple[FromClause, Node]:
        """(the table of the value's elements when it is a list, the element's node)."""
        raise NotImplementedError

    def array_length(self) -> ColumnElement[Any]:
        raise NotImplementedError


def _compare(column: ColumnElement[Any], op: str, operand: Any) -> ColumnElement[bool]:
    return column.op(op)(operand)


def json_node(dialect: str, doc: ColumnElement[Any]) -> Node:
    """The node of a whole JSON text (NULL: no value)."""
    if dialect == "postgresql":
        return PostgresNode(case((doc.is_not(None), cast(doc, JSONB))))
    return SqliteNode(doc, "$")


class SqliteNode(Node):
    """A part of a JSON text: ``doc`` and a JSON path (a string, or an expression such as
    ``json_each``'s ``fullkey``)."""

    def __init__(self, doc: ColumnElement[Any], path: str | ColumnElement[Any]) -> None:
        self.doc = doc
        self.path = path

    def _path(self) -> ColumnElement[Any]:
        return literal(self.path, Text) if isinstance(self.path, str) else self.path

    def _type(self) -> ColumnElement[Any]:
        return func.json_type(self.doc, self._path())

    def _value(self) -> ColumnElement[Any]:
        return func.json_extract(self.doc, self._path())

    def present(self) -> ColumnElement[bool]:
        return self._type().is_not(None)

    def is_string(self) -> ColumnElement[bool]:
        return self._type() == "text"

    def string(self) -> ColumnElement[Any]:
        return self._value()

    def is_number(self) -> ColumnElement[bool]:
        return self._type().in_(["integer", "real"])

    def number_compare(self, op: str, number: float) -> ColumnElement[bool]:
        return and_(self.is_number(), _compare(self._value(), op, number))

    def bool_is(self, value: bool) -> ColumnElement[bool]:
        return self._type() == ("true" if value else "false")

    def is_null(self) -> ColumnElement[bool]:
        return self._type() == "null"

    def is_array(self) -> ColumnElement[bool]:
        return self._type() == "array"

    def container_equals(self, text: str) -> ColumnElement[bool]:
        return and_(
            self._type().in_(["array", "object"]),
            self._value() == func.json(literal(text, Text)),
        )

    def child(self, key: str) -> Node:
        # a label is quoted ($."a b"); keys holding '"' are never reached (see query.py)
        label = "".join(('."', key, '"'))
        if isinstance(self.path, str):
            return SqliteNode(self.doc, "".join((self.path, label)))
        return SqliteNode(self.doc, self.path.concat(literal(label, Text)))

    def elements(self) -> tuple[FromClause, Node]:
        each = func.json_each(self.doc, self._path()).table_valued("fullkey").alias()
        return each, SqliteNode(self.doc, each.c.fullkey)

    def array_length(self) -> ColumnElement[Any]:
        return func.json_array_length(self.doc, self._path())


class PostgresNode(Node):
    """A ``jsonb`` value (SQL NULL: no value)."""

    def __init__(self, value: ColumnElement[Any]) -> None:
        self.value = value

    def _type(self) -> ColumnElement[Any]:
        return func.jsonb_typeof(self.value)

    @staticmethod
    def _json(text: str) -> ColumnElement[Any]:
        return cast(literal(text, Text), JSONB)

    def present(self) -> ColumnElement[bool]:
        return self.value.is_not(None)

    def is_string(self) -> ColumnElement[bool]:
        return self._type() == "string"

    def string(self) -> ColumnElement[Any]:
        # the text of a JSON string: element 0 of a one-element array, read with ->>
        return Grouping(func.jsonb_build_array(self.value).op("->>")(literal(0)))

    def is_number(self) -> ColumnElement[bool]:
        return self._type() == "number"

    def number_compare(self, op: str, number: float) -> ColumnElement[bool]:
        if number in (float("inf"), float("-inf")):  # JSON numbers are finite
            below = (number > 0) == (op in ("<", "<="))
            return self.is_number() if below and op != "=" else false()
        return and_(self.is_number(), _compare(self.value, op, self._json(repr(number))))

    def bool_is(self, value: bool) -> ColumnElement[bool]:
        return and_(
            self._type() == "boolean",
            _compare(self.value, "=", self._json("true" if value else "false")),
        )

    def is_null(self) -> ColumnElement[bool]:
        return self._type() == "null"

    def is_array(self) -> ColumnElement[bool]:
        return self._type() == "array"

    def container_equals(self, text: str) -> ColumnElement[bool]:
        return and_(
            self._type().in_(["array", "object"]),
            cast(self.value, Text) == cast(self._json(text), Text),
        )

    def child(self, key: str) -> Node:
        return PostgresNode(func.jsonb_extract_path(self.value, literal(key, Text)))

    def elements(self) -> tuple[FromClause, Node]:
        items = case((self.is_array(), self.value), else_=self._json("[]"))
        each = func.jsonb_array_elements(items).table_valued("value").alias()
        return each, PostgresNode(each.c.value)

    def array_length(self) -> ColumnElement[Any]:
        return case((self.is_array(), func.jsonb_array_length(self.value)))


class RowNode(Node):
    """A whole param or tag row: plain values from its columns (``value``, ``value_type``,
    ``value_num``), lists and dicts through the JSON node of its text."""

    def __init__(self, dialect: str, value: Any, value_type: Any, value_num: Any) -> None:
        self.value = value
        self.value_type = value_type
        self.value_num = value_num
        # only JSON text is ever parsed: a string or "NaN" would fail the JSON functions
        self.json = json_node(dialect, case((value_type == "json", value)))

    def present(self) -> ColumnElement[bool]:
        return true()

    def is_string(self) -> ColumnElement[bool]:
        return self.value_type == "str"

    def string(self) -> ColumnElement[Any]:
        return self.value

    def is_number(self) -> ColumnElement[bool]:
        return and_(self.value_type.in_(["int", "float"]), self.value_num.is_not(None))

    def number_compare(self, op: str, number: float) -> ColumnElement[bool]:
        return and_(self.is_number(), _compare(self.value_num, op, number))

    def bool_is(self, value: bool) -> ColumnElement[bool]:
        return and_(self.value_type == "bool", self.value == ("true" if value else "false"))

    def is_null(self) -> ColumnElement[bool]:
        return self.value_type == "null"

    def is_array(self) -> ColumnElement[bool]:
        return self.json.is_array()

    def is_date(self) -> ColumnElement[bool]:
        return self.json.is_date()

    def date_text(self) -> ColumnElement[Any]:
        return self.json.date_text()

    def container_equals(self, text: str) -> ColumnElement[bool]:
        # compared as stored (compact, sorted keys): the text itself, index-friendly
        return and_(self.value_type.in_(["json", "jsonx"]), self.value == text)

    def child(self, key: str) -> Node:
        return self.json.child(key)

    def elements(self) -> tuple[FromClause, Node]:
        return self.json.elements()

    def array_length(self) -> ColumnElement[Any]:
        return self.json.array_length()
