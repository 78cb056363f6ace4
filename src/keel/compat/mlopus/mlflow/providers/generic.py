"""``mlopus.mlflow.providers.generic``: :class:`GenericMlflowApi`, a cache folder alone.

It reads metadata and artifacts only from ``cache_dir`` (an exported cache or a filled
one), so it is always offline.
"""

from __future__ import annotations

from typing import Any

from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi


class GenericMlflowApi(BaseMlflowApi):
    """mlopus' API over a cache folder, always offline."""

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "offline_mode", True)
        super().model_post_init(context)
