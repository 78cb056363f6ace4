"""``mlopus.mlflow.api.mv``: a model version with its API handle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from keel.compat.mlopus.mlflow.api import entity
from keel.compat.mlopus.mlflow.api.common import schema, transfer

A = TypeVar("A")


class ModelVersionApi(schema.ModelVersion, entity.EntityApi):
    """Model version metadata with its API handle (``model`` and ``run`` are handles too)."""

    def using(self, api: Any) -> ModelVersionApi:
        super().using(api)
        for part in (self.run, self.model):
            if isinstance(part, entity.EntityApi):
                part.using(api)
        return self

    def _get_latest_data(self) -> schema.ModelVersion:
        return self.api.get_model_version(self)

    @property
    def url(self) -> str:
        """This version's web address."""
        return self.api.get_model_version_url(self)

    def clean_cached_artifact(self) -> ModelVersionApi:
        """Remove this version's cached artifact."""
        self.api.clean_cached_model_artifact(self)
        return self

    def cache(self) -> None:
        """Cache this version's metadata and artifact (for offline use)."""
        self.cache_meta()
        self.cache_artifact()

    def export(self, target: Path) -> None:
        """Export this version's metadata and artifact into ``target``."""
        self.export_meta(target)
        self.export_artifact(target)

    def cache_meta(self) -> ModelVersionApi:
        """Fetch this version and save it in the metadata cache."""
        return self._use_values_from(self.api.cache_model_version_meta(self))

    def export_meta(self, target: Path) -> ModelVersionApi:
        """Write this version's metadata into ``target``."""
        return self._use_values_from(self.api.export_model_version_meta(self, target))

    def set_tags(self, tags: Mapping[str, Any]) -> ModelVersionApi:
        """Set tags on this version."""
        self.api.set_tags_on_model_version(self, tags)
        return self.update()  # type: ignore[return-value]

    def cache_artifact(self) -> Path:
        """Pull this version's artifact into the local cache."""
        return self.api.cache_model_artifact(self)

    def export_artifact(self, target: Path) -> Path:
        """Export this version's cached artifact into ``target``."""
        return self.api.export_model_artifact(self, target)

    def list_artifacts(self, path_suffix: str = "") -> transfer.LsResult:
        """List this version's files (one level, as rclone's ``lsjson``)."""
        return self.api.list_model_artifact(self, path_suffix)

    def get_artifact(self) -> Path:
        """The local (cached, write-protected) path of this version's artifact."""
        return self.api.get_model_artifact(self)

    def place_artifact(
        self, target: Path, overwrite: bool = False, link: bool = True
    ) -> ModelVersionApi:
        """Put this version's artifact at ``target`` (linked files, or copies)."""
        self.api.place_model_artifact(self, target, overwrite, link)
        return self

    def load_artifact(self, loader: Callable[[Path], A]) -> A:
        """``loader(path)`` on this version's cached artifact."""
        return self.api.load_model_artifact(self, loader)
