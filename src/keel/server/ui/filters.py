"""The filter box of the UI: ``metrics.auc > 0.9 and params.model = "rf"`` → a query dict.

This module owns the small text language people type above a runs table and its
translation into the MongoDB-style dicts :meth:`keel.Client.find_runs` already answers, so
the box and the Python API share one query engine. Grammar (keywords in any case)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := field op value
                | field ["not"] "in" "(" value ("," value)* ")"
                | field ["not"] "exists"
    op         := = | == | != | <> | > | >= | < | <= | ~    (~: regular expression)
    field      := name(.name)*  or a `back-quoted` key, e.g. metrics.`val loss`
    value      := number | "text" | 'text' | true | false | null | bare-word

A bare word is text (``params.model = rf``). A bad filter raises :class:`FilterError`,
whose message names the character where reading stopped and what was expected there.
Parentheses and ``not`` nest at most :data:`keel.store.limits.MAX_QUERY_DEPTH` deep (the
query's own limit), so no filter that fits the box makes the reader recurse too deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput, QueryTooComplex
from keel.store.limits import MAX_QUERY_DEPTH

__all__ = ["FilterError", "parse_filter"]

_OPERATORS = {
    "=": "$eq",
    "==": "$eq",
    "!=": "$ne",
    "<>": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "~": "$regex",
}
_KEYWORDS = frozenset({"and", "or", "not", "in", "exists"})
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}

# One token at a time, in this order: multi-character operators before their prefixes.
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<>|>=|<=|=|>|<|~)
  | (?P<punct>[(),])
  | (?P<word>(?:[A-Za-z_][\w\-:/]*|`[^`]+`)(?:\.(?:[\w\-:/]+|`[^`]+`))*)
    """,
    re.VERBOSE,
)


class FilterError(InvalidInput):
    """A filter that cannot be read; the message says where and what was expected."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, punct, word, end
    text: str
    at: int  # 0-based character offset

    @property
    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in _KEYWORDS else None


def parse_filter(text: str | None) -> dict[str, Any]:
    """The query dict of a filter; an empty filter is ``{}`` (everything).

    Example:
        >>> parse_filter('metrics.auc > 0.9 and params.model = "rf"')
        {'$and': [{'metrics.auc': {'$gt': 0.9}}, {'params.model': 'rf'}]}
    """
    if text is None or not text.strip():
        return {}
    if len(text) > 2000:
        raise FilterError("the filter is too long (at most 2,000 characters)")
    return _Parser(text).parse()


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise FilterError(
                f"bad filter at character {at + 1}: cannot read {text[at : at + 12]!r}"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(_Token(kind, match.group(), at))
        at = match.end()
    found.append(_Token("end", "", len(text)))
    return found


class _Parser:
    """A recursive-descent reader over the token list (one token of look-ahead)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokens(text)
        self._i = 0
        self._depth = 0  # parentheses and ``not`` open around the current token

    # --- token helpers ---------------------------------------------------------------------

    @property
    def _here(self) -> _Token:
        return self._tokens[self._i]

    def _advance(self) -> _Token:
        token = self._tokens[self._i]
        self._i += 1
        return token

    def _accept_keyword(self, word: str) -> bool:
        if self._here.keyword == word:
            self._i += 1
            return True
        return False

    def _accept_punct(self, char: str) -> bool:
        if self._here.kind == "punct" and self._here.text == char:
            self._i += 1
            return True
        return False

    def _fail(self, expected: str) -> FilterError:
        token = self._here
        got = "the end of the filter" if token.kind == "end" else repr(token.text)
        return FilterError(
            f"bad filter at character {token.at + 1}: expected {expected}, got {got}"
        )

    # --- grammar ---------------------------------------------------------------------------

    def parse(self) -> dict[str, Any]:
        query = self._or()
        if self._here.kind != "end":
            raise self._fail("'and', 'or' or the end of the filter")
        return query

    def _or(self) -> dict[str, Any]:
        parts = [self._and()]
        while self._accept_keyword("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else {"$or": parts}

    def _and(self) -> dict[str, Any]:
        parts = [self._unary()]
        while self._accept_keyword("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def _unary(self) -> dict[str, Any]:
        if self._here.keyword == "not" or (self._here.kind, self._here.text) == ("punct", "("):
            self._depth += 1
            if self._depth > MAX_QUERY_DEPTH:
                raise QueryTooComplex(
                    f"bad filter at character {self._here.at + 1}: parentheses and 'not' nest "
                    f"more than {MAX_QUERY_DEPTH} deep; keel allows at most {MAX_QUERY_DEPTH}: "
                    "simplify it"
                )
            try:
                return self._nested()
            finally:
                self._depth -= 1
        return self._comparison()

    def _nested(self) -> dict[str, Any]:
        if self._accept_keyword("not"):
            return {"$nor": [self._unary()]}
        self._advance()  # "("
        inner = self._or()
        if not self._accept_punct(")"):
            raise self._fail("')'")
        return inner

    def _comparison(self) -> dict[str, Any]:
        token = self._here
        if token.kind != "word" or token.keyword is not None:
            raise self._fail("a field such as metrics.auc, params.model or status")
        self._advance()
        field = _field_name(token.text)
        negated = self._accept_keyword("not")
        if self._accept_keyword("exists"):
            return {field: {"$exists": not negated}}
        if self._accept_keyword("in"):
            return {field: {"$nin" if negated else "$in": self._list()}}
        if negated:
            raise self._fail("'in' or 'exists' after 'not'")
        if self._here.kind != "op":
            raise self._fail("an operator (=, !=, >, >=, <, <=, ~, in, exists)")
        operator = _OPERATORS[self._advance().text]
        value = self._value()
        if operator == "$regex":
            if not isinstance(value, str):
                raise FilterError(f"'~' on {field} takes a text pattern, such as \"^rf\"")
            try:
                re.compile(value)
            except re.error as exc:
                raise FilterError(f"bad regular expression {value!r} on {field}: {exc}") from None
        if operator == "$eq":
            # a plain value, as in the Python API, so that ``= null`` means "missing"
            return {field: value}
        if operator in ("$gt", "$gte", "$lt", "$lte") and (
            value is None or value is True or value is False
        ):
            raise FilterError(f"'{token.text} …' compares with a number or a text, not {value!r}")
        return {field: {operator: value}}

    def _list(self) -> list[Any]:
        if not self._accept_punct("("):
            raise self._fail("'(' to start the list of values")
        values = [self._value()]
        while self._accept_punct(","):
            values.append(self._value())
        if not self._accept_punct(")"):
            raise self._fail("',' or ')'")
        return values

    def _value(self) -> Any:
        token = self._here
        if token.kind == "number":
            self._advance()
            number = float(token.text)
            is_integral = re.fullmatch(r"[-+]?\d+", token.text) is not None
            return int(token.text) if is_integral else number
        if token.kind == "string":
            self._advance()
            return _unquote(token.text)
        if token.kind == "word" and token.keyword is None and "`" not in token.text:
            self._advance()
            lowered = token.text.lower()
            return _CONSTANTS.get(lowered, token.text)
        raise self._fail('a value (a number, "text", true, false or null)')


def _field_name(text: str) -> str:
    """``metrics.`val loss``` → ``metrics.val loss`` (back-quotes only delimit)."""
    return re.sub(r"`([^`]+)`", r"\1", text)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)
