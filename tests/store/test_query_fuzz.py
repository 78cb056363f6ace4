"""Fuzzing keel's MongoDB-style queries with hostile input, on SQLite and PostgreSQL.

What this file holds, each part against real databases:

1. **Same answer as Python.** Hypothesis builds nested queries (``$and $or $nor $not``, every
   field operator, ``params.*``, ``tags.*``, ``metrics.*``, attributes, related records) whose
   keys and values are hostile: quotes, backslashes, ``%`` and ``_``, ``; -- /* */``,
   ``'; DROP TABLE runs; --``, NUL, newlines, 5,000-character strings, RTL overrides,
   combining marks, emoji, fullwidth letters, dotted tag names, keys that look like
   operators. Each query (with a random sort) runs through ``SqlStore.find_runs`` and
   through the in-Python matcher (:mod:`keel.store.matching`, the plain evaluation keel
   already uses for the MLflow backend) over the same runs: the same run ids in the same
   order, or ``InvalidInput`` with the same message on both sides, never a database error.
   The runs are those of ``tests/query_strategies.py`` (mixed types, NaN, ±inf) plus one
   run per hostile string. PostgreSQL runs on a database whose collation is ICU ``en-US``
   (where ``'a' < 'B'``) when the server supports it, the harder case.
2. **No user text in SQL.** Every statement the engine sends during the fuzz is captured
   (``before_cursor_execute``) and must hold no string literal, no ``;``, ``--``, ``/*``,
   backslash or non-ASCII character, and no hostile key or value of the query: they are all
   bound parameters. A static scan of ``src/keel/store`` finds every ``text()`` /
   ``execute()`` call given SQL built by an f-string, ``%``, ``+``, ``.format`` or
   ``.replace``; the few that are (constant PRAGMAs, placeholder marks) are allow-listed
   with the reason.
3. **``$regex`` means Python's ``re``.** :func:`keel.store.regex.translate` writes one pattern
   for Python and PostgreSQL; on random patterns and hostile texts it must match exactly
   what Python's ``re`` matches with the original pattern and flags, in Python and in
   PostgreSQL, or refuse with ``InvalidInput``.

Cost: ``KEEL_FUZZ_EXAMPLES`` (default 150) examples on SQLite, a third of that on
PostgreSQL; derandomized, no example database, so every run tries the same cases. A longer
hunt: ``KEEL_FUZZ_EXAMPLES=3000 .venv/bin/pytest tests/store/test_query_fuzz.py``.
"""

from __future__ import annotations

import ast
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event

from keel.entities import Metric, Run
from keel.errors import InvalidInput
from keel.store.matching import RUN, Lazy, compile_query, sort_records
from keel.store.regex import translate
from keel.store.sql import SqlStore
from query_strategies import EXPERIMENT_TAGS, PARENTS, RUNS, conditions

PROJECT = "fuzz"
EXAMPLES = int(os.environ.get("KEEL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PG_FUZZ = settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))
# The strategies hold 5,000-character strings and nest deeply: hypothesis warns that their
# repr (which it builds for its own notes) is large. Only that warning is let through.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

# --- hostile strings ------------------------------------------------------------------------

LONG = "x" * 5000
HOSTILE: list[str] = [
    "'", '"', "\\", "%", "_", "%_%", "a%b_c", "100%", ";", "--", "; --", "/*", "*/", "/* */",
    "'; DROP TABLE runs; --", '" OR "1"="1', "' OR '1'='1", "\\'; --", "%' --", "`",
    "\x00", "a\x00b", "\ud800", "a\udfffb",  # no store keeps these: refused on every side
    "\n", "a\nb", "ab\n", "\r\n", "\t", "a\n\nb",
    LONG, "\u202eevil\u202c", "e\u0301", "\u0301", "😀", "👩\u200d👩\u200d👧", "ＡＢＣ", "ａ",
    "İ", "ı", "\u212a", "k", "K", "ß", "ſ", "s", "Σς", "\ufeff", "\u200b", "Ω", "\u2126",
    "$gt", "$where", "$regex", '{"$gt": 1}', "params.x", "tags.t.a", ".", "..", "a.b",
    "", " ", "NULL", "null", "true", "1", "1e3", "NaN", "-0", "[1, 2]", "{}",
    "\\x00", "\\n", ".*", "^", "$", "[a-z]", "(?i)", "\\d", "a", "B", "b", "Ab", "aB",
]  # fmt: skip


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


STORABLE = [h for h in HOSTILE if _storable(h)]
#: field keys nobody can log (check_key refuses them) but anybody can ask for
HOSTILE_KEYS = [
    "'; DROP TABLE runs; --", "a'b", 'a"b', "%", "_", "a\\b", "\x00", "\ud800", "😀", "$gt",
    ".", "x" * 300, "\u202e", "e\u0301", "ＡＢＣ", "a b", "t", "t.a.", "a.b.c.d",
]  # fmt: skip
NUMBERS: list[Any] = [
    0, 1, -1, 3, 10, 0.5, -0.0, 1.5, 1e300, -1e300, 2**53 + 1, 2**63, -(2**63) - 1, 10**30,
    10**400, math.nan, math.inf, -math.inf,
]  # fmt: skip
METRIC_VALUES = [0.0, -0.0, 1.0, 0.5, -1.5, 1e300, math.nan, math.inf, -math.inf, 3.0, 2.0**53]


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Fixture:
    """One store with the fuzz runs, and what the test keeps of it."""

    store: SqlStore
    records: list[dict[str, Any]]
    statements: list[str] = field(default_factory=list)


def _run_id(n: int) -> str:
    return f"{n:032x}"


def _populate(store: SqlStore) -> list[dict[str, Any]]:
    """The runs of query_strategies plus one per storable hostile string, with fixed ids."""
    experiments = {
        name: store.create_experiment(PROJECT, name, tags).id
        for name, tags in {**EXPERIMENT_TAGS, "hostile": {"k": "'; DROP TABLE runs; --"}}.items()
    }
    ids: dict[str, str] = {}
    n = 0
    for name, exp, kind, status, params, metrics, tags in RUNS:
        n += 1
        run = store.create_run(
            experiments[exp],
            name=name,
            kind=kind,
            status=status,
            tags=tags,
            author="ana",
            parent_id=ids.get(PARENTS.get(name, "")),
            run_id=_run_id(n),
            start_time=1000 + n,
        )
        store.log_batch(
            run.id, params=params, metrics=[Metric(k, v, 1, 1) for k, v in metrics.items()]
        )
        ids[name] = run.id
    mixed: list[Any] = [1, 2.5, "1", True, None, [1, "'"], {"a": "\n"}, "ＡＢＣ", 2**63, 10**400]
    for i, text in enumerate(STORABLE):
        n += 1
        name = text if text.isprintable() and 0 < len(text) <= 256 and text not in ids else f"h{i}"
        ids[name] = _run_id(n)
        run = store.create_run(
            experiments["hostile" if i % 3 else "grid"],
            name=name,
            kind=("train", "tracking", "dataset")[i % 3],
            status=("finished", "failed", "running")[i % 3],
            tags={"t.a": STORABLE[(i * 7) % len(STORABLE)], "a.b.c": text[:10], "t": i % 4},
            author=STORABLE[(i * 5) % len(STORABLE)][:50],
            run_id=_run_id(n),
            start_time=None if i % 5 == 0 else 1000 + i,
        )
        params: dict[str, Any] = {"v": text, "n": NUMBERS[i % len(NUMBERS)]}
        if i % 4:
            params["mix"] = mixed[i % len(mixed)]
        store.log_batch(
            run.id,
            params=params,
            metrics=[Metric("m", METRIC_VALUES[i % len(METRIC_VALUES)], 1, 1)] if i % 6 else [],
        )
        if i % 7 == 0:
            store.update_run(run.id, end_time=5000 + i)
    return _records(store)


def _records(store: SqlStore) -> list[dict[str, Any]]:
    """The runs as the matcher reads them, each with its experiment."""
    exps = {e.id: e for e in store.find_experiments(PROJECT)}
    runs: list[Run] = store.find_runs(PROJECT)
    return [{**vars(r), "exp": Lazy(lambda r=r: vars(exps[r.experiment_id]))} for r in runs]


def _capture(store: SqlStore, statements: list[str]) -> None:
    @sa_event.listens_for(store.engine, "before_cursor_execute")
    def _keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)


@pytest.fixture(scope="module")
def sqlite_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'keel.db'}")
    fixture = Fixture(store, _populate(store))
    _capture(store, fixture.statements)
    yield fixture


def _icu_database(server: Any) -> str:
    """A fresh database collated by ICU en-US (where 'a' < 'B'), or the server's default."""
    import psycopg

    url = server.new_database()
    name = f"{url.rsplit('/', 1)[1]}_icu"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        try:
            conn.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0 '  # type: ignore[arg-type]
                "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
            )
        except psycopg.Error:  # PostgreSQL before 15, or built without ICU
            return url
    return server.url(name)


@pytest.fixture(scope="module")
def postgres_fuzz(postgres_server: Any) -> Iterator[Fixture]:
    store = SqlStore(_icu_database(postgres_server))
    fixture = Fixture(store, _populate(store))
    _capture(store, fixture.statements)
    yield fixture


# --- the queries ----------------------------------------------------------------------------

ATTRIBUTES = [
    "name", "run.name", "status", "kind", "author", "id", "parent_id", "experiment_id",
    "lifecycle", "created_at", "start_time", "end_time", "exp.name", "exp.id", "exp.tags.k",
    "exp.tags.kind", "exp.created_at", "run.exp.name",
]  # fmt: skip
PARAMS = [f"params.{k}" for k in ["v", "n", "mix", "lr", "opt", "missing", *HOSTILE_KEYS]]
TAGS = [f"tags.{k}" for k in ["t.a", "a.b.c", "t", "team", "a", *HOSTILE_KEYS]]
METRICS = [f"metrics.{k}" for k in ["m", "acc", "loss", *HOSTILE_KEYS]]
BAD_FIELDS = ["", "params", "params.", "colour", "'; DROP TABLE runs; --", "exp.params.x", "$gt"]
FIELDS = [*ATTRIBUTES, *PARAMS, *TAGS, *METRICS]


def _pick(items: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``items``, drawn by index: a strategy whose repr does not hold 5,000 x's."""

    def item(index: int) -> Any:
        return items[index]

    return st.integers(0, len(items) - 1).map(item)


hostile = _pick(HOSTILE)
numbers = _pick(NUMBERS)
scalars = st.one_of(
    _pick(STORABLE), hostile, numbers, st.booleans(), st.none(), st.text(max_size=8)
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(hostile, numbers), max_size=2),
    st.dictionaries(hostile, st.one_of(hostile, numbers), max_size=2),
)

# Regular expressions: literal searches for hostile text, the portable pieces, and soup.
_PIECES = [
    ".", r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", "[a-z]", "[^a]", "[\\]'\"%_]", "[Ａ-Ｚ]",
    r"[^\n]", r"\n", r"\.", "'", "%", "_", "😀", "é", "\u212a", "k", "ſ", "s", "a", "b", "x",
    "[^\\w\\s]", r"\x41", r"\u00e9", r"\N{SNOWMAN}", "[\\d-]", "(?#note)",
]  # fmt: skip
_ANCHORS = ["^", "$", r"\A", r"\Z", r"\b", r"\B"]
_QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,3}", "{,2}", "{2,}", "*?", "+?", "??"]


def _regexes(repeat_groups: bool = True) -> st.SearchStrategy[str]:
    """Patterns from the pieces; ``repeat_groups=False``: no quantifier after a group."""
    group_quantifiers = _QUANTIFIERS if repeat_groups else ["", "?"]
    atom = st.one_of(
        st.tuples(st.sampled_from(_PIECES), st.sampled_from(_QUANTIFIERS)).map("".join),
        st.sampled_from(_ANCHORS),
        _pick(STORABLE).map(re.escape),
    )
    return st.recursive(
        st.lists(atom, min_size=1, max_size=4).map("".join),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map("|".join),
            st.tuples(st.sampled_from(["(", "(?:", "(?P<g>", "(?=", "(?!", "(?<="]), inner,
                      st.sampled_from(group_quantifiers)).map(lambda p: f"{p[0]}{p[1]}){p[2]}"),
            st.lists(inner, min_size=2, max_size=3).map("".join),
        ),
        max_leaves=6,
    )  # fmt: skip


REFUSED = [r"(\w)\1", "(?i)a", "a*+", "(?>a)", "x{256}", "(?:a{255}){255}"]
SOUP = "ab.^$*+?{}[]()|\\-,0123:=!<>Pdwsb\n'%_é"
patterns = st.one_of(
    _regexes(),
    hostile,  # as written: many are not valid regexes, and must be refused everywhere
    st.text(alphabet=list(SOUP), max_size=10),
    st.sampled_from(REFUSED),
)


def _linear(pattern: str) -> bool:
    """At most one unbounded repeat: Python's backtracking re (SQLite's REGEXP) stays
    fast on the 5,000-character value; ``(x*)*y`` or ``.*.*.*y`` would run for hours."""
    return sum(pattern.count(c) for c in "*+") + pattern.count(",}") <= 1


# what the store fuzz searches with: the same, without patterns that backtrack for ever
store_patterns = st.one_of(
    _regexes(repeat_groups=False),
    hostile,
    st.text(alphabet=list(SOUP), max_size=10),
    st.sampled_from(REFUSED),
).filter(_linear)
options = st.one_of(
    st.none(), st.sampled_from(["", "i", "m", "s", "x", "ims", "imsx", "si", "q", 1])
)


def _regex_spec(pair: tuple[str, Any]) -> dict[str, Any]:
    pattern, flags = pair
    return {"$regex": pattern} if flags is None else {"$regex": pattern, "$options": flags}


regex_specs = st.tuples(store_patterns, options).map(_regex_spec)
comparisons = st.sampled_from(["$gt", "$gte", "$lt", "$lte"])
single_ops = st.one_of(
    values.map(lambda v: {"$eq": v}),
    values.map(lambda v: {"$ne": v}),
    st.tuples(comparisons, st.one_of(hostile, numbers, values)).map(lambda p: {p[0]: p[1]}),
    st.lists(values, max_size=3).map(lambda v: {"$in": v}),
    st.lists(values, max_size=3).map(lambda v: {"$nin": v}),
    st.booleans().map(lambda b: {"$exists": b}),
    regex_specs,
    st.sampled_from(
        [
            {"$in": "a"},
            {"$where": "1"},
            {"$gt": 1, "x": 2},
            {},
            {"$not": "a"},
            {"$options": "i"},
        ]
    ),
)
specs = st.one_of(
    values,
    single_ops,
    single_ops.map(lambda s: {"$not": s}),
    st.tuples(single_ops, single_ops).map(lambda p: {**p[0], **p[1]}),
)
# the fields every fuzz run has (or lacks) a value for: most conditions pick one of these
HELD = [
    "name", "status", "kind", "author", "params.v", "params.n", "params.mix", "tags.t.a",
    "tags.a.b.c", "tags.t", "metrics.m", "start_time", "end_time", "exp.name", "exp.tags.k",
]  # fmt: skip
# one in nine is a field nobody has, one in nine refused (unknown, empty, an operator)
fields = st.one_of(*[_pick(HELD)] * 7, _pick(FIELDS), st.sampled_from(BAD_FIELDS))
hostile_conditions = st.tuples(fields, specs).map(lambda p: {p[0]: p[1]})
leaf_conditions = st.one_of(hostile_conditions, hostile_conditions, conditions())


def _queries() -> st.SearchStrategy[Any]:
    leaf = st.lists(leaf_conditions, min_size=1, max_size=3).map(
        lambda items: {k: v for item in items for k, v in item.items()}
    )
    nested = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(
                st.sampled_from(["$and", "$or", "$nor"]),
                st.lists(inner, min_size=1, max_size=3),
            ).map(lambda p: {p[0]: p[1]}),
            inner.map(lambda q: {"$not": q}),
            st.tuples(inner, leaf_conditions).map(lambda p: {**p[1], "$and": [p[0]]}),
        ),
        max_leaves=5,
    )
    malformed = st.sampled_from(
        [{"$and": []}, {"$or": "x"}, {"$nor": [1]}, {"$not": 1}, {"$where": 1}, [], "q"]
    )
    # one in ten is malformed as a whole (one_of would pick it far more often: it is simpler)
    return st.sampled_from(range(10)).flatmap(lambda i: malformed if i == 9 else nested)


sort_items = st.one_of(
    *[st.tuples(_pick(HELD), st.sampled_from([1, -1]))] * 3,
    st.tuples(_pick(FIELDS), st.sampled_from([1, -1])),
    _pick(FIELDS).map(lambda f: f"-{f}"),
    st.sampled_from([("name", 2), ("colour", 1), ("", 1), ("tags.\x00", 1)]),
)
sorts = st.one_of(st.none(), st.lists(sort_items, min_size=1, max_size=2))


# --- the comparison -------------------------------------------------------------------------


def _expected(records: list[dict[str, Any]], query: Any, sort: Any) -> list[str] | str:
    """The ids the matcher picks, in the order the SQL store gives, or the refusal."""
    try:
        match = compile_query(query, RUN)
        picked = [r for r in records if match(r) is True]
        return [r["id"] for r in sort_records(picked, sort or [("created_at", -1)], RUN)]
    except InvalidInput as exc:
        return f"InvalidInput: {exc}"


def _actual(store: SqlStore, query: Any, sort: Any) -> list[str] | str:
    try:
        return [r.id for r in store.find_runs(PROJECT, query, sort=sort)]
    except InvalidInput as exc:  # anything else (a database error) fails the test
        return f"InvalidInput: {exc}"


def _strings(value: Any) -> Iterator[str]:
    """Every string of a query or sort: keys (field names without their prefix) and values."""
    if isinstance(value, str):
        yield value
        yield value.split(".", 1)[-1]
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


_SQL_WORD = re.compile(r"[A-Za-z0-9_. ]*")


def _assert_no_user_text(statements: list[str], query: Any, sort: Any) -> None:
    assert statements, "no statement was captured"
    user = {
        s
        for s in _strings([query, sort])
        if len(s) >= 4 and (len(s) > 64 or not _SQL_WORD.fullmatch(s))
    }
    for statement in statements:
        assert statement.isascii(), statement
        for token in ("'", ";", "--", "/*", "*/", "\\", "\x00"):
            assert token not in statement, f"{token!r} in SQL: {statement}"
        for text in user:
            assert text not in statement, f"query text {text!r} in SQL: {statement}"


def _check(fixture: Fixture, query: Any, sort: Any) -> None:
    fixture.statements.clear()
    actual = _actual(fixture.store, query, sort)
    assert actual == _expected(fixture.records, query, sort)
    # --hypothesis-show-statistics: how many examples were refused, matched none, some, all
    if isinstance(actual, str):
        event("refused")
    else:
        event(
            {0: "no run"}.get(
                len(actual), "all runs" if len(actual) == len(fixture.records) else "some runs"
            )
        )
    if not isinstance(actual, str):
        _assert_no_user_text(fixture.statements, query, sort)


# Regressions: each was a database error or a different answer before this file existed.
REGRESSIONS: list[tuple[dict[str, Any], Any]] = [
    ({"name": 5}, None),  # PostgreSQL: operator does not exist: character varying = integer
    ({"name": True}, None),
    ({"start_time": "abc"}, None),  # PostgreSQL: bigint = character varying
    ({"metrics.m": "x"}, None),
    ({"metrics.m": {"$ne": "x"}}, None),
    ({"metrics.m": True}, None),  # matched 1.0 in Python and SQLite, an error on PostgreSQL
    ({"name": {"$in": [1, "r1"]}}, None),
    ({"name": {"$gt": 5}}, None),  # SQLite: every text is greater than every number
    ({"start_time": 10**30}, None),  # SQLite: OverflowError, PostgreSQL: bigint out of range
    ({"start_time": {"$lt": 10**30}}, None),
    ({"params.n": 10**400}, None),  # OverflowError everywhere
    ({"metrics.m": {"$gt": 10**400}}, None),
    ({"params.v": "a\x00b"}, None),  # PostgreSQL: text cannot contain NUL bytes
    ({"params.\x00": 1}, None),
    ({"name": "\ud800"}, None),  # UnicodeEncodeError on both databases
    ({"params.v": b"x"}, None),  # TypeError: bytes is not JSON serializable
    ({"params.v": {"$regex": "a", "$options": 1}}, None),  # TypeError
    ({"metrics.m": {"$regex": "1"}}, None),  # SQLite: user-defined function raised exception
    ({"created_at": {"$regex": "1"}}, None),  # PostgreSQL: bigint ~ character varying
    ({"params.v": {"$regex": "^a.b$"}}, None),  # PostgreSQL: "." matched a newline
    ({"params.v": {"$regex": "b$"}}, None),  # Python: also before a final newline
    ({"params.v": {"$regex": "b$", "$options": "m"}}, None),
    ({"params.v": {"$regex": r"\bab"}}, None),  # PostgreSQL: \b is a backspace
    ({"params.v": {"$regex": "(?P<x>a)"}}, None),  # PostgreSQL: invalid embedded option
    ({"params.v": {"$regex": "x{5000}"}}, None),  # PostgreSQL: invalid repetition count
    ({"params.v": {"$regex": "x{,3}b"}}, None),  # PostgreSQL: a literal "{,3}"
    ({"params.v": {"$regex": "ab", "$options": "i"}}, None),
    ({"params.v": {"$regex": "k", "$options": "i"}}, None),  # Kelvin sign: Python folds it
    ({"params.v": {"$gt": "a"}}, None),  # en-US collation: 'B' > 'a'
    ({"name": {"$lt": "b"}}, [("name", 1)]),
    ({}, [("params.v", 1)]),  # en-US collation sorts "aB" before "Ab"
    ({}, [("tags.t.a", -1), ("name", 1)]),
    ({"tags.'; DROP TABLE runs; --": {"$exists": False}}, None),
]


def _examples(test: Any) -> Any:
    for query, sort in REGRESSIONS:
        test = example(query=query, sort=sort)(test)
    return test


@FUZZ
@_examples
@given(query=_queries(), sort=sorts)
def test_sqlite_answers_like_python(sqlite_fuzz: Fixture, query: Any, sort: Any) -> None:
    _check(sqlite_fuzz, query, sort)


@pytest.mark.postgres
@PG_FUZZ
@_examples
@given(query=_queries(), sort=sorts)
def test_postgres_answers_like_python(postgres_fuzz: Fixture, query: Any, sort: Any) -> None:
    _check(postgres_fuzz, query, sort)


@pytest.mark.postgres
def test_the_postgres_fuzz_database_orders_text_by_its_locale(postgres_fuzz: Fixture) -> None:
    """Guard: PostgreSQL is fuzzed where its own text order is not Python's (ICU en-US:
    'a' < 'B'), so the queries must sort and compare by code point themselves."""
    with postgres_fuzz.store.engine.connect() as conn:
        if conn.dialect.server_version_info < (15,):
            pytest.skip("ICU database locales need PostgreSQL 15")
        assert conn.exec_driver_sql("SELECT 'a' < 'B'").scalar() is True


def test_the_fuzz_runs_hold_the_hostile_values(sqlite_fuzz: Fixture) -> None:
    """Guard: the runs really hold what the queries are fuzzed against."""
    stored = {r["params"].get("v") for r in sqlite_fuzz.records}
    assert set(STORABLE) <= stored
    assert len(sqlite_fuzz.records) == len(RUNS) + len(STORABLE)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800x"])
def test_values_no_store_keeps_are_refused_when_logged(store_url: str, value: str) -> None:
    """PostgreSQL cannot store a NUL (it raised psycopg.DataError); no store keeps a lone
    surrogate (UnicodeEncodeError): both are InvalidInput on every backend."""
    store = SqlStore(store_url)
    exp = store.create_experiment(PROJECT, "e", {})
    run = store.create_run(exp.id)
    with pytest.raises(InvalidInput, match="param 'v'"):
        store.log_batch(run.id, params={"v": value})
    with pytest.raises(InvalidInput, match="tag 't'"):
        store.create_run(exp.id, tags={"t": value})
    # in a list, JSON escapes it; an int beyond a float (OverflowError before) is kept as text
    store.log_batch(run.id, params={"v": [value], "big": 10**400})
    assert store.get_run(run.id).params == {"v": [value], "big": 10**400}
    assert [r.id for r in store.find_runs(PROJECT, {"params.big": {"$exists": True}})] == [run.id]
    assert store.find_runs(PROJECT, {"params.big": {"$gt": 0}}) == []  # no float to compare


# --- $regex: the translation means what Python's re means -------------------------------------

# short: any pattern may backtrack exponentially in Python's re (the store fuzz has LONG)
TEXTS = [
    *(t for t in STORABLE if len(t) <= 12),
    *["a\nb\n", "\n\n", "K\u212aks\u017fS", "aaa", "x{1}", "a-b", "é É", "0123", "x" * 12],
]
_REFUSALS = (
    "are not supported",
    "repeat counts go up to",
    "is too big",
    "nest more than",
    "repeats a repeat",
)


def _native(pattern: str, flags: str) -> re.Pattern[str] | None:
    value = 0
    for letter in flags:
        value |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[letter]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" and the like
        try:
            return re.compile(pattern, value)
        except (re.error, OverflowError, RecursionError):
            return None


regex_flags = st.sampled_from(["", "", "i", "m", "s", "x", "im", "is", "ms", "imsx"])


@settings(FUZZ, max_examples=EXAMPLES * 2)
@example(pattern="^a.c$", flags="")
@example(pattern=r"\bK", flags="i")
@example(pattern="#c\\\n[", flags="x")  # an escaped newline does not end a comment
@given(pattern=st.one_of(_regexes(), patterns), flags=regex_flags)
def test_regex_translation_matches_what_python_matches(pattern: str, flags: str) -> None:
    native = _native(pattern, flags)
    try:
        written = translate(pattern, flags)
    except InvalidInput as exc:
        # refused: either Python refuses it too, or it is one of the documented exclusions
        assert native is None or any(r in str(exc) for r in _REFUSALS), exc
        return
    assert native is not None, f"{pattern!r} is not a valid Python regex, yet was accepted"
    compiled = re.compile(written)
    for text in TEXTS:
        assert (compiled.search(text) is not None) == (native.search(text) is not None), text


@pytest.mark.postgres
@settings(FUZZ, max_examples=EXAMPLES)
@example(pattern="(?:a{100}){100}", flags="")  # near the cost limit: PostgreSQL must take it
@example(pattern=r"\w{255}\b", flags="i")
@given(pattern=st.one_of(_regexes(), patterns), flags=regex_flags)
def test_postgres_runs_the_translation_like_python(
    postgres_fuzz: Fixture, pattern: str, flags: str
) -> None:
    try:
        written = translate(pattern, flags)
    except InvalidInput:
        return
    compiled = re.compile(written)
    with postgres_fuzz.store.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(
            "SELECT t ~ %s FROM unnest(%s::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n",
            (written, TEXTS),
        )
        got = [row[0] for row in cursor.fetchall()]
        cursor.close()
    assert got == [compiled.search(t) is not None for t in TEXTS]


def test_regex_refusals_say_what_to_do() -> None:
    cases = {
        r"(\w)\1": "backreferences",
        "(?i)a": "use \\$options",
        "a*+": "possessive",
        "(?>a)": "atomic",
        "x{256}": "up to 255",
        "(?:a{255}){255}": "too big",
        "(" * 101 + ")" * 101: "nest more than 100",
        "(?=a)*": "repeated lookarounds",
        "(x*)*y": "repeats a repeat",  # exponential backtracking on SQLite (ReDoS)
        "(?:a|b+){2,}c": "repeats a repeat",
        "[": "unterminated character set",
        "a{2,1}": "min repeat greater than max repeat",
    }
    for pattern, says in cases.items():
        with pytest.raises(InvalidInput, match=says):
            translate(pattern)
    with pytest.raises(InvalidInput, match="unknown \\$options 'q'"):
        translate("a", "iq")


# --- no SQL built from strings ----------------------------------------------------------------

STORE = Path(__file__).resolve().parents[2] / "src" / "keel" / "store"
#: (file, function) → why its formatted SQL holds no user data
ALLOWED_FORMATTED_SQL = {
    ("engine.py", "_on_connect"): "PRAGMAs with module constants (busy timeout, cache sizes)",
    ("sql.py", "get_metric_arrays"): "a constant SELECT whose ? marks become the driver's %s",
    ("sql.py", "_insert_metric_rows"): "a constant INSERT with six placeholder marks",
    ("sql.py", "_update_latest"): "a constant upsert over six arrays, module constants joined",
    ("engine.py", "holds_records"): "table names read from SQLite's own catalogue, quoted",
    ("buckets.py", "write"): "constant upserts of module strings joined at import, values bound",
}
_SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "executescript"}


def _formatted(node: ast.AST, assigned: dict[str, list[ast.AST]]) -> bool:
    """Whether ``node`` builds a string at run time: f-string, %, +, .format, .replace…"""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"format", "replace", "join", "format_map"}
    if isinstance(node, ast.Name):
        return any(_formatted(v, {}) for v in assigned.get(node.id, []))
    return False


def _assignments(body: list[ast.stmt]) -> dict[str, list[ast.AST]]:
    """Name → values assigned to it in ``body`` (not inside nested functions)."""
    names: dict[str, list[ast.AST]] = {}
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(node.value)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _formatted_sql_calls(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(innermost enclosing function, line) of every SQL call whose first argument is
    built at run time, directly or through a name assigned in an enclosing scope."""

    def visit(
        node: ast.AST, function: str, names: dict[str, list[ast.AST]]
    ) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = {k: [*names.get(k, []), *v] for k, v in _assignments(child.body).items()}
                yield from visit(child, child.name, {**names, **inner})
                continue
            if isinstance(child, ast.Call) and child.args:
                func = child.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in _SQL_CALLS and _formatted(child.args[0], names):
                    yield function, child.lineno
            yield from visit(child, function, names)

    yield from visit(tree, "<module>", _assignments(tree.body))


def test_no_sql_is_built_from_strings_in_the_store() -> None:
    files = sorted(STORE.rglob("*.py"))
    assert len(files) > 10, "the store sources were not found"
    found: dict[tuple[str, str], int] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function, line in _formatted_sql_calls(tree):
            found[(path.name, function)] = line
    unexplained = sorted(set(found) - set(ALLOWED_FORMATTED_SQL))
    assert not unexplained, f"SQL built by string formatting, not bound: {unexplained}"
    stale = sorted(set(ALLOWED_FORMATTED_SQL) - set(found))
    assert not stale, f"allow-listed but no longer there (drop them): {stale}"


def test_the_scan_finds_what_it_looks_for() -> None:
    """Guard: the scan flags each way of building SQL from text."""
    source = """
def a(conn, name):
    conn.execute(text(f"SELECT * FROM runs WHERE name = '{name}'"))
def b(conn, name):
    conn.exec_driver_sql("SELECT * FROM runs WHERE name = '%s'" % name)
def c(conn, name):
    sql = "SELECT * FROM runs WHERE name = '{}'".format(name)
    conn.execute(text(sql))
def d(conn, name):
    conn.execute(text("SELECT 1 WHERE x = '" + name + "'"))
def e(conn, name):
    conn.execute(text("SELECT 1 WHERE x = :x"), {"x": name})
"""
    found = {function for function, _ in _formatted_sql_calls(ast.parse(source))}
    assert found == {"a", "b", "c", "d"}
