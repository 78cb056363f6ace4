"""``mlopus.utils.paths``: the error of a path a call must not use."""

from __future__ import annotations

from keel.errors import IllegalPath

__all__ = ["IllegalPath"]
