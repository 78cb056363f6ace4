"""``keel.server.jsonlimits``: JSON parsed only when it nests within the server's bound.

The depth is measured without recursing and without parsing (quotes, escapes and brackets
counted over the bytes), so it is checked here against the obvious recursive definition
on documents Hypothesis writes, strings full of brackets, quotes and backslashes included;
and on any text at all, the loader never recurses too deep and never returns a value
deeper than asked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.server.jsonlimits import json_depth, loads_bounded


def depth(value: Any) -> int:
    """How deep a parsed value nests: the recursive reference."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\/,:ab \n\t\u00e9\u2028\U0001f600', max_size=12)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), tricky_text
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(tricky_text, inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(value=documents, ascii_only=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_the_measured_depth_is_the_recursive_one(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    assert json_depth(text) == depth(value)
    assert json_depth(text.encode("utf-8")) == depth(value)
    assert loads_bounded(text, depth(value)) == value
    if depth(value):
        with pytest.raises(InvalidInput):
            loads_bounded(text, depth(value) - 1)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet='[]{}"\\,:1 ', max_size=400))
def test_any_text_is_parsed_within_the_bound_or_refused(text: str) -> None:
    try:
        value = loads_bounded(text, 5)
    except (InvalidInput, json.JSONDecodeError):
        return
    assert depth(value) <= 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ('{"a": "]]]}}}", "b": [[1]]}', 3),
        ('["\\"[[", [1]]', 2),  # an escaped quote does not end the string
        ('["\\\\", [[1]]]', 3),  # an escaped backslash does not escape the quote after it
        ('["\\\\\\"[", [1]]', 2),  # three backslashes: one escapes the quote
        ('{"k\\"[": [{"l": "}"}]}', 3),
    ],
)
def test_brackets_in_strings_and_escapes_do_not_count(text: str, expected: int) -> None:
    assert json_depth(text) == expected == depth(json.loads(text))


def test_other_encodings_are_measured_as_json_reads_them() -> None:
    text = '{"a": [["]]é"]]}'
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"):
        data = text.encode(encoding)
        assert json_depth(data) == 3, encoding
        assert loads_bounded(data, 3) == json.loads(text)


def test_a_deep_document_is_refused_naming_the_setting_without_recursing() -> None:
    deep = b"[" * 1_000_000 + b"]" * 1_000_000  # json.loads: RecursionError
    with pytest.raises(InvalidInput) as refused:
        loads_bounded(deep, 32)
    assert str(refused.value) == (
        "the JSON nests 1000000 deep; keel allows at most 32 (server.max_json_depth): flatten it"
    )


def test_malformed_json_is_a_decode_error() -> None:
    for text in ('{"a": 1', '"unterminated [[[[', "[1, 2,]", "\xff"):
        with pytest.raises(json.JSONDecodeError):
            loads_bounded(text, 32)
    with pytest.raises(UnicodeDecodeError):
        loads_bounded(b'{"a": "\xff"}', 32)
