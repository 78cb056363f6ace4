"""Checking a config section against its pydantic model, with errors people can act on.

pydantic's own messages name neither the file nor the line, and print the offending input
(which may be a secret). Here each problem becomes ``<file> line <n>: <key.path>: <what was
expected>``; input values are never echoed.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, TypeVar

from keel.config.yamlfile import Document, Loc, dotted, shown
from keel.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")

MAX_PROBLEMS_SHOWN = 3


def validate_section(
    model: type[M], data: Any, loc: Loc = (), document: Document | None = None
) -> M:
    """``data`` (found at ``loc`` in ``document``) as a ``model``, or a :class:`ConfigError`."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, model, loc, document)) from None


def describe(
    exc: ValidationError, model: type[BaseModel], loc: Loc, document: Document | None
) -> str:
    """One line for the first problems of ``exc``; the rest are counted."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        # Union members and dict keys appear in pydantic's loc; drop the noise it adds.
        where_in = tuple(p for p in error["loc"] if not _is_pydantic_marker(p))
        full = (*loc, *where_in)
        problems.append((full, _message(error, model, where_in)))
    # An unknown key is the likeliest typo: report it first.
    problems.sort(key=lambda p: not p[1].startswith("unknown key"))
    lines = []
    for full, message in problems[:MAX_PROBLEMS_SHOWN]:
        where = document.where(full) if document is not None else "config"
        key = f"{dotted(full)}: " if full else ""
        line = f"{where}: {key}{message}"
        lines.append(document.scrub(line) if document is not None else line)
    more = len(problems) - MAX_PROBLEMS_SHOWN
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return "; ".join(lines) + tail


def _is_pydantic_marker(part: Any) -> bool:
    # pydantic inserts the union member's name ("str", "StoreSection", "function-after[...]")
    # into error locations; config keys never look like that.
    return isinstance(part, str) and (
        part[:1].isupper() or "[" in part or part in {"str", "int", "float", "bool", "dict"}
    )


def _message(error: Any, model: type[BaseModel], where_in: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(model, where_in[:-1])
        name = str(where_in[-1]) if where_in else "?"
        hint = ""
        if known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?" if close else " ("
            hint += f"{' k' if close else 'k'}nown keys: {', '.join(sorted(known))})"
        return f"unknown key {shown(name)}{hint}"
    if kind == "missing":
        return "required, but missing"
    if kind == "string_pattern_mismatch":
        from keel.config.models import NAME_PATTERN

        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        if pattern == NAME_PATTERN:
            return (
                "expected a name of letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        return f"expected text matching the regular expression {pattern}"
    message = str(error["msg"])
    # "a valid dictionary or instance of StoreSection": the class name means nothing in YAML
    message = re.sub(r" or instance of \w+$", "", message)
    for prefix in ("Input should be", "Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :].strip()
            if prefix == "Input should be":
                message = "expected " + message
    return message


def _known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the (sub)model found at ``loc`` below ``model``, if it is one."""
    from typing import get_args, get_origin

    from pydantic import BaseModel

    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        for arg in (annotation, *get_args(annotation)):
            if get_origin(arg) is dict:
                # A dict of sections (datasources.<name>): the next part is the name.
                if parts:
                    parts.pop(0)
                annotation = get_args(arg)[1]
                break
        current = next(
            (
                a
                for a in (annotation, *get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []
