"""How values look on the UI's pages: times, durations, numbers, hashes, JSON and URLs.

Each function is a Jinja2 filter (registered by :func:`keel.server.ui.templates`), so
templates never format by hand and every page shows a value the same way.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as ``2024-06-01 12:00:05`` (UTC); ``-`` when unknown."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int | None, end: int | None) -> str:
    """How long from ``start`` to ``end`` (ms), as ``1h 02m``, ``3m 05s`` or ``4.2s``."""
    if start is None or end is None:
        return "-"
    seconds = max(0.0, (end - start) / 1000)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def num(value: Any) -> str:
    """A metric or param value: floats to 6 significant digits, everything else as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def short(text: str | None, length: int = 12) -> str:
    """The start of a hash or id: enough to tell records apart on a page."""
    return "" if not text else text[:length]


def pretty(value: Any, limit: int = 20_000) -> str:
    """JSON of a value: on one line when short, else indented (cut at ``limit`` characters,
    saying so)."""
    text = json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    if len(text) > 100:
        text = json.dumps(value, indent=2, sort_keys=True, default=str, allow_nan=True)
    if len(text) > limit:
        return text[:limit] + f"\n… ({len(text) - limit:,} more characters)"
    return text


def clip(value: Any, limit: int = 120) -> str:
    """A one-line form of any value, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, allow_nan=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def path_part(text: str) -> str:
    """A name for a URL path: spaces and reserved characters escaped, ``/`` kept."""
    return quote(str(text), safe="/")


def size(n: int | None) -> str:
    """A byte count as ``1.2 MB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


FILTERS = {
    "when": when,
    "num": num,
    "short": short,
    "pretty": pretty,
    "clip": clip,
    "path_part": path_part,
    "size": size,
}


def project_slug(project: str) -> str:
    """A project name as one URL path segment: its ``/`` written ``~`` (a character names
    never hold), the rest percent-escaped: ``team/vision`` → ``team~vision``."""
    return quote(project.replace("/", "~"), safe="~")


def project_url(project: str, path: str = "") -> str:
    """The URL of a project's page: ``project_url("demo", "/models")`` → ``/projects/demo/models``.

    ``path`` is already a URL path (names in it escaped with :func:`path_part`), starting with
    ``/``, ``?`` or ``#``, or empty for the project's start page.
    """
    return f"/projects/{project_slug(project)}{path}"


GLOBALS = {"duration": duration, "project_url": project_url}
