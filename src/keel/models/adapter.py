"""What the seed-style adapters share: state that lives only while a command runs."""

from __future__ import annotations

from typing import Any

from keel.models.base import Model


class Adapter(Model):
    """A keel model wrapping code written in another style.

    Attributes whose names start with ``_live`` (a trainer, a predictor…) exist only in
    the process that made them: they are left out when the model is stored.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_live")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
