"""The names and keys keel accepts, checked before anything is written.

Names (experiments, models, datasets) and keys (params, metrics, tags) are what users type
and what appears in URLs and file paths, so they are kept to a safe, printable alphabet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from keel.entities import RUN_KINDS, RUN_STATUSES, ArtifactFile
from keel.errors import InvalidInput
from keel.paths import check_relative_path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,254}[A-Za-z0-9_.\-]$|^[A-Za-z0-9_]$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-. /:]{1,250}$")
ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
RESERVED_ALIASES = frozenset({"latest"})


def check_name(name: Any, what: str) -> str:
    """A valid experiment, model or dataset name, or InvalidInput saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid {what} name {name!r}: use 1-256 letters, digits, '_', '-', '.', '/' or "
            "spaces, starting with a letter, digit or '_' (no '..')"
        )
    return name


def check_experiment_name(name: Any) -> str:
    """A valid experiment name: wider than other names, as MLflow's are ("Run (lr=0.1)").

    Experiment names are never file paths (keel's files are kept by id), so any printable
    text goes, except what would still confuse keel: empty or over 256 characters, spaces
    at either end, a leading '/' or a '..' part (they read as paths in URLs and logs), and
    '~', which separates project and name in an MLflow tracking backend.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= 256
        or not name.isprintable()
        or name != name.strip()
        or name.startswith("/")
        or ".." in name.split("/")
        or "~" in name
    ):
        raise InvalidInput(
            f"invalid experiment name {name!r}: use 1-256 printable characters, without "
            "spaces at either end, a leading '/', a '..' part or '~'"
        )
    return name


def check_run_name(name: Any) -> str:
    """A run name: free text (it is never used in a path), 1-256 printable characters."""
    if not isinstance(name, str) or not 0 < len(name) <= 256 or not name.isprintable():
        raise InvalidInput(f"invalid run name {name!r}: use 1-256 printable characters")
    return name


def check_run_kind(kind: Any) -> str:
    if kind not in RUN_KINDS:
        raise InvalidInput(f"unknown run kind {kind!r}: use one of {', '.join(RUN_KINDS)}")
    return str(kind)


def check_run_status(status: Any) -> str:
    if status not in RUN_STATUSES:
        raise InvalidInput(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
    return str(status)


def check_key(key: Any, what: str) -> str:
    """A valid param, metric or tag key."""
    if (
        not isinstance(key, str)
        or not KEY_PATTERN.match(key)
        or key.startswith("/")
        or ".." in key.split("/")
    ):
        raise InvalidInput(
            f"invalid {what} key {key!r}: use 1-250 letters, digits, '_', '-', '.', ' ', ':' "
            "or '/' (not starting with '/')"
        )
    return key


def check_alias(alias: Any) -> str:
    """A valid alias (``production``, ``staging``…); ``latest`` is implicit and reserved."""
    if not isinstance(alias, str) or not ALIAS_PATTERN.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use up to 64 letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidInput(f"alias {alias!r} is reserved: it always means the newest version")
    return alias


def check_label(label: Any) -> str:
    """A valid version label such as ``1.2.0``."""
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise InvalidInput(
            f"invalid version label {label!r}: use up to 64 letters, digits, '.', '_', '+' "
            "or '-', starting with a letter or digit (e.g. 1.2.0)"
        )
    return label


def check_id(value: Any, what: str) -> str:
    """A keel id (32 lowercase hex characters)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidInput(f"invalid {what} id {value!r}: expected 32 lowercase hex characters")
    return value


def check_metric_value(key: str, value: Any) -> float:
    """A metric value as a float (NaN and ±inf allowed), or InvalidInput."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"metric {key!r} must be a number, got {value!r}") from None
    if math.isnan(number):
        return math.nan
    return number


def check_step(key: str, step: Any) -> int:
    """A metric step as an int."""
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            if float(step) != int(step):
                raise ValueError
            step = int(step)
        except (TypeError, ValueError):
            raise InvalidInput(f"step of metric {key!r} must be an integer, got {step!r}") from None
    return step


def check_artifact_files(files: Sequence[ArtifactFile]) -> Sequence[ArtifactFile]:
    """``files`` if every path is a safe relative path (:mod:`keel.paths`): a record is
    what clients join under their local folders, so ``../x`` is refused before it is kept."""
    for f in files:
        check_relative_path(f.path, "artifact path")
    return files


def check_artifact_prefix(prefix: str) -> str:
    """A folder to list (``""`` or ``"/"``: all files; a trailing ``/`` is dropped), refused
    when it is not a safe relative path, like the paths it lists."""
    if not isinstance(prefix, str):
        raise InvalidInput(f"artifact prefix must be text, got {prefix!r}")
    if prefix.strip("/") == "":
        return ""
    return check_relative_path(prefix.rstrip("/"), "artifact prefix")


def check_value_text(key: str, text: str, what: str) -> str:
    """The stored text of a param or tag value, refused when a store cannot keep it: a NUL
    character (PostgreSQL's text cannot hold one) or a lone surrogate (not UTF-8)."""
    if "\x00" in text:
        raise InvalidInput(
            f"{what} {key!r}: the value holds a NUL character (\\x00), which PostgreSQL "
            "cannot store: remove it, or log the value as a list or dict (stored as JSON)"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} {key!r}: the value is not valid Unicode (it holds a lone surrogate)"
        ) from None
    return text
