"""keel's ``$regex``: one pattern that matches the same text in Python, SQLite and PostgreSQL.

Python's ``re`` (the in-Python matcher, and SQLite's ``REGEXP``, which SQLAlchemy runs in
Python) and PostgreSQL's regular expressions disagree on a lot: ``.``, ``[^…]`` and ``$``
around newlines, ``\\b`` (a backspace there), ``\\d``/``\\w``/``\\s`` and case folding beyond
ASCII (which follow the database's locale), named groups, ``{,n}``, counts above 255. So a
pattern is parsed here once and written out with everything spelled out: characters as
``\\uXXXX`` escapes, classes as explicit code point ranges (computed by Python's own engine,
so ``\\w`` or ``$options: i`` mean exactly what they mean in Python), anchors as ``\\A``,
``\\Z`` and lookarounds, no flags. Python and PostgreSQL read that text the same way, so
every backend runs the same pattern and finds the same matches as Python's ``re`` would
with the original pattern.

Supported: literals and escapes (``\\n \\t \\xhh \\uhhhh \\N{…}``, octal), ``.``, classes
with ranges and negation, ``\\d \\D \\w \\W \\s \\S``, ``^ $ \\A \\Z \\b \\B``, groups
(``(…)``, ``(?:…)``, ``(?P<name>…)``, ``(?#…)``), ``|``, ``* + ? {m} {m,} {m,n} {,n}`` and
their lazy forms, lookarounds; ``$options`` ``i m s x``. Refused with
:class:`~keel.errors.InvalidInput` on every backend: backreferences, inline flags (use
``$options``), conditionals, atomic groups, possessive quantifiers, repeat counts above 255
and patterns too big for PostgreSQL to compile.

Cost: translations are cached (512 patterns). A class (``[a-z]`` with ``i``, ``\\w``) is
listed by running Python's engine over every code point once, a 4 MB string built on first
use and kept: about 20 ms per new class; plain characters and ranges need no scan.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from keel.errors import InvalidInput

__all__ = ["FLAGS", "MAX_COST", "MAX_REPEAT", "translate"]

FLAGS = "imsx"
MAX_REPEAT = 255  # PostgreSQL's limit on {m,n} (RE_DUP_MAX)
# PostgreSQL expands bounded repeats into copies and refuses "too complex" expressions;
# (?:a{255}){255} is, (?:a{100}){100} is not. The cost counts characters and copies.
MAX_COST = 20_000
MAX_DEPTH = 100
_MAX_CHAR = 0x10FFFF
_NEWLINE = 0x0A

Ranges = tuple[tuple[int, int], ...]


def translate(pattern: str, flags: str = "") -> str:
    """``pattern`` with ``$options`` ``flags`` as one regex text for Python and PostgreSQL.

    Args:
        pattern: a Python-style regular expression.
        flags: any of ``i`` (ignore case), ``m`` (``^``/``$`` at lines), ``s`` (``.`` matches
            a newline), ``x`` (verbose).

    Returns:
        A flag-free pattern that ``re.search`` and PostgreSQL's ``~`` both match against
        exactly the strings ``re.search(pattern, text, flags)`` matches.

    Raises:
        InvalidInput: the pattern is malformed or uses what keel does not support.

    Example:
        >>> translate("^a.c$")
        '\\\\Aa[^\\\\u000A]c(?=\\\\u000A?\\\\Z)'
    """
    if not isinstance(pattern, str):
        raise InvalidInput(f"$regex takes a string pattern, got {type(pattern).__name__}")
    if not isinstance(flags, str):
        raise InvalidInput(f"$options takes a string of letters, got {flags!r}")
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise InvalidInput(f"unknown $options {''.join(sorted(unknown))!r}: use i, m, s or x")
    return _translate(pattern, "".join(sorted(set(flags))))


@lru_cache(maxsize=512)
def _translate(pattern: str, flags: str) -> str:
    parser = _Parser(pattern, flags)
    node = parser.parse()
    if _repeats_a_repeat(node):
        raise InvalidInput(
            f"$regex {_short(pattern)} repeats a repeat (like (a*)* or (a+){{2,}}), which can "
            "take exponential time: repeat only the inner part, e.g. a* instead of (a*)*"
        )
    cost = _cost(node)
    if cost > MAX_COST:
        raise InvalidInput(
            f"$regex {_short(pattern)} is too big ({cost} characters once its repeats are "
            f"expanded, at most {MAX_COST}): use fewer or smaller {{m,n}} repeats"
        )
    text = _render(node)
    try:
        re.compile(text)
    except re.error as exc:  # e.g. a look-behind whose width is not fixed
        raise InvalidInput(f"invalid $regex {_short(pattern)}: {exc}") from None
    return text


def _short(pattern: str) -> str:
    return repr(pattern) if len(pattern) <= 80 else repr(pattern[:77] + "...")


# --- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Set:
    """One character out of ``ranges`` (inclusive code point pairs, sorted, disjoint)."""

    ranges: Ranges


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    branches: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    low: int
    high: int | None  # None: no upper bound
    lazy: bool


@dataclass(frozen=True)
class _Look:
    kind: str  # "=", "!", "<=", "<!"
    item: _Node


@dataclass(frozen=True)
class _At:
    """A zero-width assertion: ``start``, ``end``, ``line_start``, ``line_end``,
    ``abs_start``, ``abs_end``, ``boundary`` or ``not_boundary``."""

    kind: str


@dataclass(frozen=True)
class _Group:
    """A group: kept apart from its content so that ``(?:a*)*`` is not a double repeat."""

    item: _Node


_Node = _Set | _Seq | _Alt | _Repeat | _Look | _At | _Group


# --- parsing (the rules of Python's sre_parse, for the supported part) ---------------------

_CATEGORIES = {"d": r"\d", "D": r"\D", "w": r"\w", "W": r"\W", "s": r"\s", "S": r"\S"}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_ASSERTIONS = {"A": "abs_start", "Z": "abs_end", "b": "boundary", "B": "not_boundary"}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
_VERBOSE_SPACE = " \t\n\r\v\f"


class _Parser:
    def __init__(self, pattern: str, flags: str) -> None:
        self.source = pattern
        self.pos = 0
        self.ignore_case = "i" in flags
        self.multiline = "m" in flags
        self.dotall = "s" in flags
        self.verbose = "x" in flags
        self.depth = 0
        self.names: set[str] = set()

    def fail(self, problem: str) -> InvalidInput:
        return InvalidInput(
            f"invalid $regex {_short(self.source)}: {problem} at position {self.pos}"
        )

    def refuse(self, what: str) -> InvalidInput:
        return InvalidInput(
            f"$regex {_short(self.source)}: {what} (position {self.pos}) "
            "are not supported: keel runs the same pattern on every store"
        )

    def peek(self, n: int = 1) -> str:
        return self.source[self.pos : self.pos + n]

    def take(self) -> str:
        if self.pos >= len(self.source):
            raise self.fail("unexpected end of pattern")
        c = self.source[self.pos]
        self.pos += 1
        return c

    def match(self, text: str) -> bool:
        if self.source.startswith(text, self.pos):
            self.pos += len(text)
            return True
        return False

    # -- structure --

    def parse(self) -> _Node:
        node = self.alternation()
        if self.pos < len(self.source):  # only a ")" stops an alternation early
            raise self.fail("unbalanced parenthesis")
        return node

    def alternation(self) -> _Node:
        branches = [self.sequence()]
        while self.match("|"):
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while True:
            self.skip_verbose()
            c = self.peek()
            if not c or c in "|)":
                break
            if c in "*+?" or (c == "{" and self.quantifier_ahead()):
                self.quantify(items)
                continue
            item = self.atom()
            if item is not None:
                items.append(item)
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def skip_verbose(self) -> None:
        if not self.verbose:
            return
        while self.pos < len(self.source):
            c = self.source[self.pos]
            if c in _VERBOSE_SPACE:
                self.pos += 1
            elif c == "#":
                # to the end of the line; as in Python, "\\" takes the next character with
                # it (an escaped newline does not end the comment, a final "\\" is an error)
                while self.pos < len(self.source):
                    c = self.take()
                    if c == "\\":
                        self.take()
                    elif c == "\n":
                        break
            else:
                return

    def quantifier_ahead(self) -> bool:
        """Whether the ``{`` at pos starts ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` or ``{,}``."""
        return re.match(r"\{(\d*)(,\d*)?\}", self.source[self.pos :]) is not None and (
            self.peek(2) != "{}"
        )

    def quantify(self, items: list[_Node]) -> None:
        start = self.pos
        c = self.take()
        high: int | None
        if c == "*":
            low, high = 0, None
        elif c == "+":
            low, high = 1, None
        elif c == "?":
            low, high = 0, 1
        else:
            found = re.match(r"\{(\d*)(?:(,)(\d*))?\}", self.source[start:])
            assert found is not None  # quantifier_ahead said so
            self.pos = start + found.end()
            lo_text, comma, hi_text = found.groups()
            low = int(lo_text) if lo_text else 0
            high = (int(hi_text) if hi_text else None) if comma else low
            if high is not None and high < low:
                raise self.fail("min repeat greater than max repeat")
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                raise InvalidInput(
                    f"$regex {_short(self.source)}: repeat counts go up to {MAX_REPEAT} "
                    f"(PostgreSQL's limit), got {self.source[start : self.pos]}"
                )
        if not items or isinstance(items[-1], _At):
            self.pos = start
            raise self.fail("nothing to repeat")
        if isinstance(items[-1], _Look):
            self.pos = start
            raise self.refuse("repeated lookarounds")
        if isinstance(items[-1], _Repeat):
            self.pos = start
            raise self.fail("multiple repeat")
        lazy = self.match("?")
        if self.peek() == "+":
            raise self.refuse("possessive quantifiers")
        items[-1] = _Repeat(items[-1], low, high, lazy)

    def atom(self) -> _Node | None:
        c = self.take()
        if c == ".":
            return _Set(_ALL if self.dotall else _complement(((_NEWLINE, _NEWLINE),)))
        if c == "^":
            return _At("line_start" if self.multiline else "start")
        if c == "$":
            return _At("line_end" if self.multiline else "end")
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        if c == "\\":
            return self.escape()
        return self.literal(ord(c))  # also a "{" that starts no {m,n}, as in Python

    def group(self) -> _Node | None:
        look = None
        if self.match("?"):
            if self.match(":"):
                pass
            elif self.match("P<"):
                end = self.source.find(">", self.pos)
                name = self.source[self.pos : end] if end >= 0 else ""
                if end < 0 or not name.isidentifier():
                    raise self.fail("bad character in group name")
                if name in self.names:
                    raise self.fail(f"redefinition of group name {name!r}")
                self.names.add(name)
                self.pos = end + 1
            elif self.match("P="):
                raise self.refuse("backreferences")
            elif self.match("#"):
                end = self.source.find(")", self.pos)
                if end < 0:
                    raise self.fail("missing ), unterminated comment")
                self.pos = end + 1
                return None
            elif self.match("="):
                look = "="
            elif self.match("!"):
                look = "!"
            elif self.match("<="):
                look = "<="
            elif self.match("<!"):
                look = "<!"
            elif self.peek() == ">":
                raise self.refuse("atomic groups")
            elif self.peek() == "(":
                raise self.refuse("conditional groups")
            elif self.peek() and self.peek() in "aiLmsux-":
                raise self.refuse("inline flags such as (?i) (use $options)")
            else:
                raise self.fail(f"unknown extension ?{self.peek()}")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidInput(
                f"$regex {_short(self.source)}: groups nest more than {MAX_DEPTH} deep"
            )
        inner = self.alternation()
        self.depth -= 1
        if not self.match(")"):
            raise self.fail("missing ), unterminated subpattern")
        return _Look(look, inner) if look is not None else _Group(inner)

    def escape(self) -> _Node:
        c = self.take()
        if c in _CATEGORIES:
            return _Set(_category(_CATEGORIES[c], self.ignore_case))
        if c in _ASSERTIONS:
            return _At(_ASSERTIONS[c])
        if c in "123456789":
            if c in _OCTAL and self.peek(2) and all(d in _OCTAL for d in self.peek(2)):
                value = int(c + self.take() + self.take(), 8)
                if value > 0o377:
                    raise self.fail(f"octal escape value \\{oct(value)[2:]} outside of range")
                return self.literal(value)
            raise self.refuse("backreferences")
        return self.literal(self.char_escape(c, in_class=False))

    def char_escape(self, c: str, in_class: bool) -> int:
        """The code point of the escape ``\\c…`` (``c`` taken), for a literal or a class."""
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if c == "b" and in_class:
            return 8
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.peek(width)
            if len(digits) != width or any(d not in _HEX for d in digits):
                raise self.fail(f"incomplete escape \\{c}{digits}")
            self.pos += width
            value = int(digits, 16)
            if value > _MAX_CHAR:
                raise self.fail(f"bad escape \\{c}{digits}")
            return value
        if c == "N":
            end = self.source.find("}", self.pos)
            if not self.match("{") or end < 0:
                raise self.fail("missing {NAME} after \\N")
            name = self.source[self.pos : end]
            self.pos = end + 1
            try:
                return ord(unicodedata.lookup(name))
            except KeyError:
                raise self.fail(f"undefined character name {name!r}") from None
        if c in _OCTAL:
            digits = c
            while len(digits) < 3 and self.peek() and self.peek() in _OCTAL:
                digits += self.take()
            value = int(digits, 8)
            if value > 0o377:
                raise self.fail(f"octal escape value \\{digits} outside of range")
            return value
        if c.isascii() and c.isalnum():
            raise self.fail(f"bad escape \\{c}")
        return ord(c)

    def literal(self, code: int) -> _Set:
        if self.ignore_case:
            return _Set(_fold(code))
        return _Set(((code, code),))

    def char_class(self) -> _Set:
        negate = self.match("^")
        parts: list[str] = []  # the class in Python's syntax, escapes spelled out
        plain: list[tuple[int, int]] = []  # its ranges, while it has no \\w and no case folding
        simple = not self.ignore_case
        while True:
            if self.pos >= len(self.source):
                raise self.fail("unterminated character set")
            c = self.take()
            if c == "]" and parts:
                break
            first, first_is_char = self.class_item(c)
            if self.match("-"):
                if self.pos >= len(self.source):
                    raise self.fail("unterminated character set")
                nxt = self.take()
                if nxt == "]":
                    parts += [first, _escape(ord("-"))]
                    simple = simple and first_is_char
                    if simple:
                        plain += [(_code(first), _code(first)), (ord("-"), ord("-"))]
                    break
                second, second_is_char = self.class_item(nxt)
                if not (first_is_char and second_is_char):
                    raise self.fail("bad character range")
                if _code(second) < _code(first):
                    raise self.fail("bad character range")
                parts.append(f"{first}-{second}")
                plain.append((_code(first), _code(second)))
            else:
                parts.append(first)
                simple = simple and first_is_char
                if first_is_char:
                    plain.append((_code(first), _code(first)))
        if simple:  # plain characters and ranges: no need to ask Python's engine
            ranges = _normalize(plain)
            return _Set(_complement(ranges) if negate else ranges)
        return _Set(_scan_class("".join(parts), negate, self.ignore_case))

    def class_item(self, c: str) -> tuple[str, bool]:
        """(Python syntax of one class member, whether it is a single character)."""
        if c != "\\":
            return _escape(ord(c)), True
        e = self.take()
        if e in _CATEGORIES:
            return _CATEGORIES[e], False
        if e in "ABZ":
            raise self.fail(f"bad escape \\{e}")
        if e in "89":
            raise self.fail(f"bad escape \\{e}")
        return _escape(self.char_escape(e, in_class=True)), True


def _code(escaped: str) -> int:
    return int(escaped[2:], 16)


# --- character sets ------------------------------------------------------------------------

_ALL: Ranges = ((0, _MAX_CHAR),)


def _normalize(ranges: list[tuple[int, int]]) -> Ranges:
    """Sorted, merged, disjoint ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _MAX_CHAR:
        out.append((start, _MAX_CHAR))
    return tuple(out)


@lru_cache(maxsize=1)
def _every_character() -> str:
    """Every code point once, in order: Python's engine scans it to list a class's members."""
    return "".join(map(chr, range(_MAX_CHAR + 1)))


def _runs(compiled: re.Pattern[str]) -> Ranges:
    return tuple((m.start(), m.end() - 1) for m in compiled.finditer(_every_character()))


@lru_cache(maxsize=1024)
def _scan_class(body: str, negate: bool, ignore_case: bool) -> Ranges:
    """The code points Python's ``[body]`` (``[^body]``) matches: asked of Python itself."""
    flags = re.IGNORECASE if ignore_case else 0
    return _runs(re.compile(f"[{'^' if negate else ''}{body}]+", flags))


@lru_cache(maxsize=16)
def _category(escape: str, ignore_case: bool) -> Ranges:
    return _runs(re.compile(f"(?:{escape})+", re.IGNORECASE if ignore_case else 0))


@lru_cache(maxsize=4096)
def _fold(code: int) -> Ranges:
    """The characters ``re.IGNORECASE`` matches for the literal ``code``."""
    c = chr(code)
    if c.lower() == c and c.upper() == c:
        # No case mapping: no other character folds to it (checked for every code point
        # when this was written), so skip the scan.
        return ((code, code),)
    return _scan_class(_escape(code), False, True)


def _escape(code: int) -> str:
    """One character as an escape both Python and PostgreSQL read (inside [] or out)."""
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


# --- anchors and boundaries, written out ---------------------------------------------------

_NL = _escape(_NEWLINE)
_ANCHORS = {
    "abs_start": "\\A",
    "abs_end": "\\Z",
    "start": "\\A",  # Python's ^
    "end": f"(?={_NL}?\\Z)",  # Python's $: at the end, or before a newline ending the text
    "line_start": f"(?:\\A|(?<={_NL}))",
    "line_end": f"(?={_NL}|\\Z)",
}


def _assertion(kind: str) -> str:
    if kind in _ANCHORS:
        return _ANCHORS[kind]
    w = _render_set(_category(r"\w", False))
    if kind == "boundary":
        return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
    # Python's \B never matches in an empty text
    return f"(?:(?<={w})(?={w})|(?<!{w})(?!{w})(?!\\A\\Z))"


# --- writing out ---------------------------------------------------------------------------


def _render(node: _Node) -> str:
    if isinstance(node, _Set):
        return _render_set(node.ranges)
    if isinstance(node, _At):
        return _assertion(node.kind)
    if isinstance(node, _Seq):
        return "".join(_render(item) for item in node.items)
    if isinstance(node, _Alt):
        return "|".join(_render(b) for b in node.branches)
    if isinstance(node, _Look):
        return f"(?{node.kind}{_render(node.item)})"
    if isinstance(node, _Group):
        return f"(?:{_render(node.item)})"
    # a set is written as one atom; anything else is grouped before its quantifier
    inner = _render(node.item)
    if not isinstance(node.item, _Set | _Group):
        inner = f"(?:{inner})"
    return inner + _quantifier(node.low, node.high) + ("?" if node.lazy else "")


def _quantifier(low: int, high: int | None) -> str:
    if high is None:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _render_set(ranges: Ranges) -> str:
    if not ranges:
        return f"[^{_escape(0)}-{_escape(_MAX_CHAR)}]"  # matches nothing, as one atom
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        code = ranges[0][0]
        c = chr(code)
        return c if c.isascii() and c.isalnum() else _escape(code)
    negated = _complement(ranges)
    if negated and len(negated) < len(ranges):
        return "[^" + _render_ranges(negated) + "]"
    return "[" + _render_ranges(ranges) + "]"


def _render_ranges(ranges: Ranges) -> str:
    return "".join(_escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}" for lo, hi in ranges)


def _cost(node: _Node) -> int:
    """Characters and copies PostgreSQL builds for ``node`` (its repeats expanded)."""
    if isinstance(node, _Set):
        return 1 + len(node.ranges) // 16
    if isinstance(node, _At):
        return 1 if node.kind in _ANCHORS else 2 + len(_category(r"\w", False)) // 8
    if isinstance(node, _Seq):
        return sum(_cost(i) for i in node.items)
    if isinstance(node, _Alt):
        return sum(_cost(b) for b in node.branches) + 1
    if isinstance(node, _Look | _Group):
        return _cost(node.item) + 1
    copies = max(node.low, node.high or 0, 1) + (1 if node.high is None else 0)
    return _cost(node.item) * copies


def _repeats_a_repeat(node: _Node, repeated: bool = False) -> bool:
    """Whether an unbounded repeat sits inside another repeat of more than one copy.

    SQLite runs ``$regex`` with Python's backtracking engine, where such a pattern against a
    long value can try exponentially many ways to split it and stall the query (ReDoS).
    """
    if isinstance(node, _Repeat):
        if node.high is None and repeated:
            return True
        many = node.high is None or node.high > 1
        return _repeats_a_repeat(node.item, repeated or many)
    if isinstance(node, _Seq):
        return any(_repeats_a_repeat(i, repeated) for i in node.items)
    if isinstance(node, _Alt):
        return any(_repeats_a_repeat(b, repeated) for b in node.branches)
    if isinstance(node, _Look | _Group):
        return _repeats_a_repeat(node.item, repeated)
    return False
