"""What a safe relative path is: the one rule every surface checks names against.

Artifact paths (``a/b/c`` inside a run, a dataset or a model version), the file names of
uploads and the names a remote store lists all end up joined under a local folder. This
module owns the check that such a name stays inside that folder wherever it is used (this
machine, a Windows laptop, a URL) and cannot pass for another name when it is shown.

A safe relative path is text of ``/``-separated segments, at most :data:`MAX_PATH_CHARS`
characters, and is refused when it:

* is empty, absolute (``/x``), starts with a drive (``C:``) or a home folder (``~``);
* has an empty segment (``a//b``, a trailing ``/``), or a segment that is only dots and
  spaces (``.``, ``..``, ``...``): Windows reads ``...`` and ``.. `` as ``..``;
* contains a backslash, a NUL or any other control character, an invisible format
  character (a right-to-left override ``U+202E``, zero-width characters), or a character
  that looks like a slash (``∕`` U+2215, ``⁄`` U+2044, fullwidth ``／``);
* turns into any of the above under Unicode NFKC normalisation (fullwidth ``．．`` is
  ``..``; filesystems and tools that normalise would read it so);
* contains a percent escape (``%2e``): a name is written as itself, never URL-encoded,
  so that nothing that decodes it later turns ``%2e%2e`` into ``..``.

Pure functions of text, with no I/O, so every layer may use them.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from keel.errors import InvalidInput

__all__ = [
    "MAX_PATH_CHARS",
    "check_local_target",
    "check_path_segment",
    "check_relative_path",
    "unsafe_reason",
]

MAX_PATH_CHARS = 1024
#: Unicode categories never allowed: control, format (bidi overrides, zero-width), line and
#: paragraph separators, surrogates
_BANNED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: characters that look like a slash or a backslash but are not (NFKC keeps them)
_SLASH_LOOKALIKES = frozenset("\u2215\u2044\u29f8\u29f9\u2216\u29f5\u2571\u2572\u3033")
_DRIVE = re.compile(r"^[A-Za-z]:")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_reason(path: object) -> str | None:
    """Why ``path`` is not a safe relative path, or None when it is.

    Args:
        path: the candidate, e.g. ``model/weights.bin``.

    Returns:
        A short reason (``"it contains '..'"``) or None.
    """
    if not isinstance(path, str):
        return f"it is a {type(path).__name__}, not text"
    if not path:
        return "it is empty"
    if len(path) > MAX_PATH_CHARS:
        return f"it is longer than {MAX_PATH_CHARS} characters"
    if "\x00" in path:
        return "it contains a NUL character"
    if "\\" in path:
        return "it contains a backslash (use / between folders)"
    if path.isascii():  # the common case, checked without a walk over Unicode tables
        if _ASCII_CONTROL.search(path):
            return f"it contains the control character {_named(_ASCII_CONTROL.findall(path)[0])}"
        if _PERCENT_ESCAPE.search(path):
            return "it contains a percent escape (write the character itself, not %xx)"
        return _structure(path, path.count("/") + 1)
    for char in path:
        if char in _SLASH_LOOKALIKES:
            return f"it contains {_named(char)}, which looks like a slash"
        if unicodedata.category(char) in _BANNED_CATEGORIES:
            return f"it contains the control or invisible character {_named(char)}"
    if _PERCENT_ESCAPE.search(path):
        return "it contains a percent escape (write the character itself, not %xx)"
    normal = unicodedata.normalize("NFKC", path)
    reason = _structure(normal, path.count("/") + 1)
    if reason is not None and normal != path:
        reason += " (once its Unicode is normalised, NFKC)"
    return reason


def _structure(path: str, segments_written: int) -> str | None:
    """What is wrong with the shape of ``path`` (already NFKC-normalised)."""
    if path.startswith("/"):
        return "it is absolute"
    if _DRIVE.match(path):
        return "it starts with a drive letter"
    if path.startswith("~"):
        return "it starts with '~' (a home folder)"
    if "\\" in path:
        return "it contains a backslash"
    segments = path.split("/")
    if len(segments) != segments_written:
        return "it contains a character that reads as a slash"
    for segment in segments:
        if segment == "":
            return "it has an empty segment (a doubled or trailing '/')"
        if segment in (".", ".."):
            return f"it contains {segment!r}"
        if segment.strip(". ") == "":
            return "it has a segment of only dots and spaces"
    return None


def check_relative_path(path: object, what: str = "artifact path") -> str:
    """``path`` if it is a safe relative path (see the module's rules), else InvalidInput.

    Args:
        path: the candidate.
        what: what the path is, for the message (``"artifact path"``, ``"file name"``).

    Returns:
        The path, unchanged.

    Raises:
        InvalidInput: one line naming the path and the rule it breaks.
    """
    reason = unsafe_reason(path)
    if reason is not None:
        raise InvalidInput(
            f"{what} {_shown(path)} is not allowed: {reason}; use a relative path like 'a/b.txt'"
        )
    assert isinstance(path, str)
    return path


def check_path_segment(value: object, what: str) -> str:
    """``value`` if it is one safe path segment (an id or a file name: no ``/`` either).

    Args:
        value: the candidate.
        what: what it is, for the message (``"run id"``, ``"support file name"``).

    Returns:
        The value, unchanged.

    Raises:
        InvalidInput: one line naming the value and the rule it breaks.
    """
    if isinstance(value, str) and "/" in value:
        raise InvalidInput(f"{what} {_shown(value)} is not allowed: it contains '/'")
    return check_relative_path(value, what)


def check_local_target(target: str | os.PathLike[str], what: str) -> Path:
    """A folder or file on this machine that the caller chose (``place_*``/``export_*``).

    It is the caller's own path, like ``cp``'s destination: absolute, relative to the
    working folder or with ``..`` as they wish. It is refused only when it holds a NUL, a
    control or an invisible character, which no real path needs and which hide what the
    path is when it is shown. What keel writes *inside* it is checked separately (every
    name a store lists is a safe relative path).

    Args:
        target: the path.
        what: what it is, for the message (``"export target"``).

    Returns:
        The path as a :class:`~pathlib.Path`.

    Raises:
        InvalidInput: one line naming the path and the character.
    """
    text = os.fspath(target)
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"{what} must be a non-empty path, got {_shown(target)}")
    for char in text:
        if unicodedata.category(char) in _BANNED_CATEGORIES:
            raise InvalidInput(f"{what} {_shown(text)} is not allowed: it contains {_named(char)}")
    return Path(text)


def _named(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} ({name})" if name else f"U+{ord(char):04X}"


def _shown(value: object) -> str:
    """``repr`` of a value, shortened, with invisible characters escaped (``ascii``): the
    message must not carry a right-to-left override into a terminal or a page."""
    text = ascii(value)
    return text if len(text) <= 120 else text[:117] + "..."
