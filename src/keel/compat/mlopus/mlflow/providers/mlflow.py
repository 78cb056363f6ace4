"""``mlopus.mlflow.providers.mlflow``: :class:`MlflowApi`, the API on a keel store.

``tracking_uri`` names keel's metadata store: a folder, ``sqlite:///FILE``,
``postgresql://…``, a keel server ``http(s)://…`` or an MLflow server
``mlflow+http(s)://…``; unset, keel's default (``KEEL_STORE``, keel.yml, ``./.keel``).
mlopus' MLflow-client settings (``healthcheck``, ``client_settings``, ``tag_keys``,
``query_push_down``, ``data_translation``, ``cache_id``) are accepted and unused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi


class MlflowApi(BaseMlflowApi):
    """mlopus' MLflow API on a keel store."""

    tracking_uri: str | None = Field(default=None, description="keel store URL or folder.")
    artifacts: str | None = Field(default=None, description="keel artifact store (keel's own).")
    project: str | None = Field(default=None, description="keel project (keel's own).")
    healthcheck: bool = True
    client_settings: dict[str, Any] = Field(default_factory=dict)
    tag_keys: Any = None
    query_push_down: Any = None
    data_translation: Any = None
    cache_id: str | None = None

    def _store_url(self) -> str | None:
        return None if self.tracking_uri in (None, "") else str(self.tracking_uri)

    def _client_options(self) -> dict[str, Any]:
        return {"artifacts": self.artifacts, "project": self.project}
