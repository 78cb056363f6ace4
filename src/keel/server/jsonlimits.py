"""JSON from callers, parsed only when it nests no deeper than the server allows.

Python's ``json`` recurses once per nesting level: a body or a query parameter of 10,000
``[`` is a RecursionError (a 500) after the parser has built 10,000 objects, and a
structure just under the recursion limit is walked recursively again by every consumer.
:func:`loads_bounded` measures the nesting first, without recursing and without building
anything, and refuses a document deeper than ``max_depth`` with
:class:`~keel.errors.InvalidInput` naming ``server.max_json_depth``.

How the depth is measured, in C-speed passes over the bytes (``bytes.replace``,
``bytes.translate``, numpy): escaped backslashes (``\\\\``) and then escaped quotes (``\\"``)
are removed, so every quote left opens or closes a string; everything but quotes and
brackets is dropped; a bracket counts only when an even number of quotes precedes it
(outside strings); the depth is the highest running sum of ``[``/``{`` (+1) and ``]``/``}``
(-1). Measured on 8-10 MB bodies on a busy 2-core machine: 20-80 ms, where ``json.loads``
itself takes 20-450 ms. A document holding no more opening brackets than ``max_depth``
cannot nest deeper, and skips all of this. On malformed JSON the measure may be off, but
only past the point where ``json`` itself stops with an error: the document is refused
either way.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from keel.errors import InvalidInput

__all__ = ["DEPTH_SETTING", "json_depth", "loads_bounded"]

#: the setting that bounds the nesting (keel.yml ``server.max_json_depth``)
DEPTH_SETTING = "server.max_json_depth"
_OPENERS = (b"[", b"{")
_QUOTE = ord('"')
#: every byte but brackets and quotes, which alone decide the depth
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'[]{}"')))


@cache
def _step_table() -> Any:
    """+1 for ``[`` and ``{``, -1 for ``]`` and ``}``, 0 for every other byte."""
    import numpy as np

    step = np.zeros(256, dtype=np.int8)
    step[list(b"[{")] = 1
    step[list(b"]}")] = -1
    return step


def loads_bounded(text: str | bytes, max_depth: int) -> Any:
    """``json.loads(text)``, refusing a document that nests deeper than ``max_depth``.

    Args:
        text: a JSON document (bytes in any encoding ``json.loads`` detects, or text).
        max_depth: the most levels of ``[]``/``{}`` allowed (``[1]`` is 1 deep, ``1`` is 0).

    Raises:
        InvalidInput: the document nests deeper than ``max_depth``.
        json.JSONDecodeError, UnicodeDecodeError: it is not JSON.

    Example:
        >>> loads_bounded('{"a": [1, "]]"]}', 2)
        {'a': [1, ']]']}
    """
    depth = json_depth(text, max_depth)
    if depth > max_depth:
        raise InvalidInput(
            f"the JSON nests {depth} deep; keel allows at most {max_depth} "
            f"({DEPTH_SETTING}): flatten it"
        )
    return json.loads(text)


def json_depth(text: str | bytes, at_least: int = 0) -> int:
    """How deep ``text`` nests (outside strings), or some depth up to ``at_least`` when its
    brackets are too few to nest deeper than that (the common case, answered at once)."""
    # in any encoding json reads, each bracket holds its ASCII byte: the count is no less
    # than the number of brackets
    if isinstance(text, str):
        openers = text.count("[") + text.count("{")
    else:
        openers = sum(text.count(b) for b in _OPENERS)
    if openers <= at_least:
        return openers
    return _scan_depth(_utf8(text))


def _utf8(text: str | bytes) -> bytes:
    """The document as UTF-8 bytes, where every byte below 0x80 is that ASCII character."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    data = bytes(text)
    encoding = json.detect_encoding(data)
    if encoding in ("utf-8", "utf-8-sig"):
        return data
    return data.decode(encoding, "replace").encode("utf-8", "surrogatepass")


def _scan_depth(data: bytes) -> int:
    import numpy as np

    if b"\\" in data:
        # JSON reads a run of backslashes as pairs from the left, as bytes.replace does; a
        # backslash left over escapes the character after it (a quote matters, others not)
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    codes = np.frombuffer(data.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    steps = _step_table()[codes]
    if b'"' in data:
        inside = np.cumsum(codes == _QUOTE, dtype=np.int32) & 1  # after an odd number of quotes
        steps = steps * (1 - inside).astype(np.int8)
    if steps.size == 0:
        return 0
    return max(0, int(np.cumsum(steps, dtype=np.int64).max()))
