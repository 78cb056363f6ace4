"""``mlopus.mlflow.api.model``: a registered model with its API handle."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from keel.compat.mlopus.mlflow.api import entity
from keel.compat.mlopus.mlflow.api.common import schema
from keel.compat.mlopus.mlflow.api.mv import ModelVersionApi


class ModelApi(schema.Model, entity.EntityApi):
    """Registered model metadata with its API handle."""

    def _get_latest_data(self) -> schema.Model:
        return self.api.get_model(self)

    @property
    def url(self) -> str:
        """This model's web address."""
        return self.api.get_model_url(self)

    def cache_meta(self) -> ModelApi:
        """Fetch this model and save it in the metadata cache."""
        return self._use_values_from(self.api.cache_model_meta(self))

    def export_meta(self, target: Path) -> ModelApi:
        """Write this model's metadata into ``target`` (the cache's layout)."""
        return self._use_values_from(self.api.export_model_meta(self, target))

    def set_tags(self, tags: Mapping[str, Any]) -> ModelApi:
        """Set tags on this model."""
        self.api.set_tags_on_model(self, tags)
        return self.update()  # type: ignore[return-value]

    def get_version(self, version: str | int) -> ModelVersionApi:
        """A version of this model by its number."""
        return self.api.get_model_version((self.name, str(version)))

    def find_versions(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[ModelVersionApi]:
        """Versions of this model matching a MongoDB-style query."""
        return self.api.find_model_versions({**(query or {}), "model.name": self.name}, sorting)

    def log_version(
        self,
        run: Any,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
        version: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersionApi:
        """Publish a file or folder as the next version of this model, from ``run``."""
        from keel.compat.mlopus.mlflow.api.run import RunApi

        mv = self.api.log_model_version(
            self, run, source, path_in_run, keep_the_source, allow_duplication, use_cache,
            version, tags,
        )  # fmt: skip
        if isinstance(run, RunApi):
            mv.run = run  # the live run: the version sees its status change
        return mv
