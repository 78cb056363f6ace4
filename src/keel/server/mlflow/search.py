"""MLflow's search language, read and translated into keel's MongoDB-style queries.

This module owns the filters and ``order_by`` clauses of MLflow's ``search_*`` calls and
their page tokens. A filter is parsed by a tokenizer and a recursive-descent reader (the same
grammar MLflow's server accepts; a filter it refuses is refused here, with the character
where reading stopped), then translated, per kind of record, into a query dict for
:mod:`keel.store.query`, so that filtering, sorting and paging happen in SQL::

    filter     := clause ("AND" clause)*
    clause     := identifier comparator
    comparator := ("=" | "!=" | ">" | ">=" | "<" | "<=") value
                | ("LIKE" | "ILIKE") string
                | ["NOT"] "IN" "(" value ("," value)* ")"
                | "IS" ["NOT"] "NULL"
    identifier := [entity "."] key    entity: metric(s), param(s), parameter(s), tag(s),
                                      attribute(s), attr, run, dataset(s)
    key        := name("." name)* | "quoted" | 'quoted' | `quoted`
    value      := 'text' | "text" | number

Keywords are case-insensitive. Semantics follow MLflow: a record without the metric, param
or tag never matches a comparison (``!=`` included), ``LIKE`` is SQL's (``%`` any text,
``_`` one character; case-sensitive), ``ILIKE`` ignores case, ``IS NULL`` matches a missing
param or tag. An order clause is an identifier followed by ``ASC`` or ``DESC``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.server.mlflow.protocol import INVALID_PARAMETER_VALUE, MlflowError

# --- reading -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<quoted>`[^`]*`)
  | (?P<op>!=|>=|<=|=|>|<)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w\-:/]*|\d[\w\-:/]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "like", "ilike", "in", "not", "is", "null", "asc", "desc"})
_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
MAX_FILTER_LENGTH = 10_000


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, quoted, op, punct, word, end
    text: str
    at: int

    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in _KEYWORDS else None


@dataclass(frozen=True)
class Clause:
    """One comparison of a filter: ``kind`` is metric, param, tag, attribute or dataset."""

    kind: str
    key: str
    op: str  # = != > >= < <= LIKE ILIKE IN "NOT IN" "IS NULL" "IS NOT NULL"
    value: Any = None  # str, int, float, list of those, or None


def _bad(message: str) -> MlflowError:
    return MlflowError(message, INVALID_PARAMETER_VALUE)


def _tokens(text: str, what: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise _bad(
                f"Invalid {what} {text!r}: cannot read {text[at : at + 12]!r} at character {at + 1}"
            )
        if match.lastgroup != "space":
            found.append(_Token(match.lastgroup or "", match.group(), at))
        at = match.end()
    found.append(_Token("end", "", len(text)))
    return found


class _Reader:
    """One token of look-ahead over a filter or an order clause."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.tokens = _tokens(text, what)
        self.i = 0

    @property
    def here(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, keyword: str) -> bool:
        if self.here.keyword() == keyword:
            self.i += 1
            return True
        return False

    def accept_punct(self, char: str) -> bool:
        if self.here.kind == "punct" and self.here.text == char:
            self.i += 1
            return True
        return False

    def fail(self, expected: str) -> MlflowError:
        token = self.here
        got = "the end" if token.kind == "end" else repr(token.text)
        return _bad(
            f"Invalid {self.what} {self.text!r}: expected {expected} at character "
            f"{token.at + 1}, got {got}"
        )

    # identifier := [entity "."] key
    def identifier(self) -> tuple[str, str]:
        parts: list[tuple[str, bool]] = [self._part()]
        while self.accept_punct("."):
            parts.append(self._part())
        first, _first_quoted = parts[0]
        if len(parts) == 1:
            return "attribute", first
        entity = _ENTITIES.get(first)
        if entity is None:
            raise _bad(
                f"Invalid entity type '{first}' in {self.what} {self.text!r}. Valid values are "
                "metric(s), param(s), tag(s), attribute(s), dataset(s)"
            )
        rest = parts[1:]
        if len(rest) > 1 and any(quoted for _, quoted in rest):
            raise _bad(f"Invalid identifier in {self.what} {self.text!r}: quote the whole key")
        return entity, ".".join(name for name, _ in rest)

    def _part(self) -> tuple[str, bool]:
        token = self.here
        if token.kind == "word" and token.keyword() is None:
            self.advance()
            return token.text, False
        if token.kind in ("quoted", "string"):
            self.advance()
            return token.text[1:-1], True
        if token.kind == "number" and re.fullmatch(r"\d+", token.text):  # a key such as `1`
            self.advance()
            return token.text, False
        raise self.fail("an identifier such as metrics.acc, params.model or status")

    def value(self) -> str | int | float:
        token = self.here
        if token.kind == "string":
            self.advance()
            return token.text[1:-1]
        if token.kind == "number":
            self.advance()
            if re.fullmatch(r"[-+]?\d+", token.text):
                return int(token.text)
            return float(token.text)
        raise self.fail("a quoted string or a number")


def parse_filter(text: str | None) -> list[Clause]:
    """The clauses of an MLflow filter (an empty filter has none)."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad(f"The filter is too long (at most {MAX_FILTER_LENGTH:,} characters)")
    reader = _Reader(text, "filter")
    clauses = [_clause(reader)]
    while reader.accept("and"):
        clauses.append(_clause(reader))
    if reader.here.kind != "end":
        raise reader.fail("AND or the end of the filter")
    return clauses


def _clause(reader: _Reader) -> Clause:
    kind, key = reader.identifier()
    token = reader.here
    if token.kind == "op":
        reader.advance()
        return Clause(kind, key, token.text, reader.value())
    if reader.accept("like") or reader.accept("ilike"):
        op = "LIKE" if token.keyword() == "like" else "ILIKE"
        value = reader.value()
        if not isinstance(value, str):
            raise _bad(f"{op} on {key!r} takes a quoted pattern, such as '%rf%'")
        return Clause(kind, key, op, value)
    if reader.accept("is"):
        negated = reader.accept("not")
        if not reader.accept("null"):
            raise reader.fail("NULL")
        return Clause(kind, key, "IS NOT NULL" if negated else "IS NULL")
    negated = reader.accept("not")
    if reader.accept("in"):
        if not reader.accept_punct("("):
            raise reader.fail("'(' to start the list")
        values = [reader.value()]
        while reader.accept_punct(","):
            values.append(reader.value())
        if not reader.accept_punct(")"):
            raise reader.fail("',' or ')'")
        return Clause(kind, key, "NOT IN" if negated else "IN", values)
    raise reader.fail("a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL)")


def parse_order_by(items: Sequence[str]) -> list[tuple[str, str, bool]]:
    """``(kind, key, ascending)`` of each ``order_by`` clause."""
    found = []
    for item in items:
        reader = _Reader(item, "order_by clause")
        kind, key = reader.identifier()
        ascending = True
        if reader.accept("desc"):
            ascending = False
        else:
            reader.accept("asc")
        if reader.here.kind != "end":
            raise reader.fail("ASC, DESC or the end of the clause")
        found.append((kind, key, ascending))
    return found


# --- translating -------------------------------------------------------------------------------

_NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")
_MONGO = {"=": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}


@dataclass(frozen=True)
class Attribute:
    """A searchable attribute: the keel field it is, and how MLflow's values become keel's."""

    field: str
    numeric: bool = False
    convert: Callable[[Any], Any] | None = None
    ignore_case: bool = False  # keel keeps it in another case (a status): LIKE ignores case


@dataclass(frozen=True)
class Target:
    """What one kind of MLflow record can be filtered and sorted by."""

    what: str
    attributes: dict[str, Attribute]
    kinds: frozenset[str] = frozenset({"tag"})
    order_attributes: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(
        default_factory=lambda: {"metric": "metrics.", "param": "params.", "tag": "tags."}
    )
    #: whether ``tags.k != 'v'`` matches records without the tag: MLflow's registry does (its
    #: client hides prompts with ``tags.`mlflow.prompt.is_prompt` != 'true'``), its
    #: tracking does not
    missing_is_not_equal: bool = False


def like_regex(pattern: str) -> str:
    """SQL's LIKE pattern as a regular expression (``%`` any text, ``_`` one character)."""
    parts = ["^"]
    for char in pattern:
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    parts.append("$")
    return "".join(parts)


def _condition(
    name: str, op: str, value: Any, ignore_case: bool = False, missing_is_not_equal: bool = False
) -> dict[str, Any]:
    if op in ("IS NULL", "IS NOT NULL"):
        return {name: {"$exists": op == "IS NOT NULL"}}
    if op in ("LIKE", "ILIKE"):
        found: dict[str, Any] = {"$regex": like_regex(value)}
        if op == "ILIKE" or ignore_case:
            found["$options"] = "i"
        return {name: found}
    if op == "IN":
        return {name: {"$in": list(value)}}
    if op == "NOT IN":  # as in MLflow, a record without the field does not match
        return {name: {"$exists": True, "$nin": list(value)}}
    if op == "!=":
        return (
            {name: {"$ne": value}}
            if missing_is_not_equal
            else {name: {"$exists": True, "$ne": value}}
        )
    return {name: {_MONGO[op]: value}}


def translate(clauses: Sequence[Clause], target: Target) -> dict[str, Any]:
    """The keel query of an MLflow filter over ``target`` records (``{}``: everything)."""
    parts = [_translate(c, target) for c in clauses]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _translate(clause: Clause, target: Target) -> dict[str, Any]:
    kind, key, op, value = clause.kind, clause.key, clause.op.upper(), clause.value
    if kind == "dataset":
        raise _bad("keel does not keep MLflow datasets: dataset filters are not supported")
    if kind == "attribute":
        attribute = target.attributes.get(key)
        if attribute is None:
            valid = ", ".join(sorted(target.attributes))
            raise _bad(f"Invalid attribute key '{key}' specified. Valid keys are: {valid}")
        allowed = _NUMERIC_OPS if attribute.numeric else (*_TEXT_OPS[:6],)
        if op not in allowed:
            raise _bad(
                f"Invalid comparator '{clause.op}' for attribute '{key}': use one of "
                + ", ".join(allowed)
            )
        values = value if isinstance(value, list) else [value]
        for item in values:
            if attribute.numeric != isinstance(item, int | float):
                expected = "a number" if attribute.numeric else "a quoted string"
                raise _bad(f"Expected {expected} for attribute '{key}', got {item!r}")
        if attribute.convert is not None:
            converted = [attribute.convert(v) for v in values]
            value = converted if isinstance(value, list) else converted[0]
        return _condition(attribute.field, op, value, attribute.ignore_case)
    if kind not in target.kinds:
        raise _bad(f"{target.what} cannot be filtered by {kind}s")
    name = target.fields[kind] + key
    if kind == "metric":
        if op not in _NUMERIC_OPS:
            raise _bad(
                f"Invalid comparator '{clause.op}' for metric '{key}': use one of "
                + ", ".join(_NUMERIC_OPS)
            )
        if not isinstance(value, int | float):
            raise _bad(f"Expected a numeric value for metric '{key}', got {value!r}")
        return _condition(name, op, float(value))
    if op not in _TEXT_OPS:
        raise _bad(
            f"Invalid comparator '{clause.op}' for {kind} '{key}': use one of "
            + ", ".join(_TEXT_OPS)
        )
    values = value if isinstance(value, list) else [value]
    if op not in ("IS NULL", "IS NOT NULL") and not all(isinstance(v, str) for v in values):
        raise _bad(
            f"Expected a quoted string value for {kind} '{key}' (e.g. 'my-value'), got {value!r}"
        )
    return _condition(name, op, value, missing_is_not_equal=target.missing_is_not_equal)


def sort_of(order_by: Sequence[str], target: Target) -> list[tuple[str, int]]:
    """keel's sort of MLflow ``order_by`` clauses."""
    found = []
    for kind, key, ascending in parse_order_by(order_by):
        if kind == "attribute":
            column = target.order_attributes.get(key)
            if column is None:
                valid = ", ".join(sorted(target.order_attributes))
                raise _bad(f"Invalid order_by attribute '{key}'. Valid keys are: {valid}")
        elif kind in target.kinds:
            column = target.fields[kind] + key
        else:
            raise _bad(f"{target.what} cannot be ordered by {kind}s")
        found.append((column, 1 if ascending else -1))
    return found


# --- pages -------------------------------------------------------------------------------------


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_of(token: str | None) -> int:
    """The offset a page token stands for (0 without one)."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise _bad(f"Invalid page token {token!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise _bad(f"Invalid page token {token!r}")
    return offset


def page_size(value: int | None, default: int, most: int) -> int:
    """``max_results`` checked against MLflow's limit for the search."""
    if value is None:
        return default
    if value <= 0 or value > most:
        raise _bad(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be at most "
            f"{most:,} and more than 0."
        )
    return value


def paged(found: list[Any], offset: int, size: int) -> tuple[list[Any], str | None]:
    """One page of what a query with ``limit=size + 1`` found, and the next page's token."""
    if len(found) > size:
        return found[:size], page_token(offset + size)
    return found, None
