"""The persistables one was made from (a model's pipeline, a pipeline's dataset …), by id.

``pipeline = Related("PIPELINE", "pipeline_id")`` on a class: reading it gives the object set
on this instance (held weakly, as SimpleML did) or loads the saved one with that id from the
store the first time (then kept); setting it remembers the object.
"""

from __future__ import annotations

import weakref
from typing import Any


class Related:
    """A related persistable, found by the id in ``id_attr`` and loaded on first use."""

    def __init__(self, kind: str, id_attr: str) -> None:
        self.kind = kind
        self.id_attr = id_attr
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        ref = obj.__dict__.get(self.slot)
        if ref is not None and ref() is not None:
            return ref()
        ident = getattr(obj, self.id_attr, None)
        if ident is None:
            return None
        from keel.compat.simpleml import records

        found = records.load_by_id(self.kind, ident)
        obj.__dict__[f"{self.slot}_strong"] = found  # loaded here: nobody else holds it
        obj.__dict__[self.slot] = weakref.ref(found)
        return found

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = weakref.ref(value)
