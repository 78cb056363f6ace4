"""Split containers: the ``X``/``y``/… sections of one dataset split."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


class Split(dict):  # type: ignore[type-arg]
    """A dict of sections (``X``, ``y``, …) that also reads as attributes (``split.X``)."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self.get(attr, None)

    @staticmethod
    def is_null_type(obj: Any) -> bool:
        if obj is None:
            return True
        empty = getattr(obj, "empty", None)
        if isinstance(empty, bool):
            return empty
        return isinstance(obj, (list, tuple, dict)) and not obj

    def squeeze(self) -> Split:
        """Drop empty sections (so ``**split`` passes only real inputs)."""
        for key in [k for k, v in self.items() if self.is_null_type(v)]:
            self.pop(key)
        return self


class SplitContainer(defaultdict):  # type: ignore[type-arg]
    """Splits by name; a missing name gives an empty :class:`Split`."""

    def __init__(self, default_factory: Any = Split, **kwargs: Any) -> None:
        super().__init__(default_factory, **kwargs)
