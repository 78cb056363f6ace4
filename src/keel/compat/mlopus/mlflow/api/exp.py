"""``mlopus.mlflow.api.exp``: an experiment with its API handle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.compat.mlopus.mlflow.api import entity
from keel.compat.mlopus.mlflow.api.common import schema

if TYPE_CHECKING:
    from keel.compat.mlopus.mlflow.api.run import RunApi


class ExpApi(schema.Experiment, entity.EntityApi):
    """Experiment metadata with its API handle."""

    def _get_latest_data(self) -> schema.Experiment:
        return self.api.get_exp(self)

    @property
    def url(self) -> str:
        """This experiment's web address."""
        return self.api.get_exp_url(self)

    def find_runs(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[RunApi]:
        """Runs of this experiment matching a MongoDB-style query."""
        return self.api.find_runs({**(query or {}), "exp.id": self.id}, sorting)

    def cache_meta(self) -> ExpApi:
        """Fetch this experiment and save it in the metadata cache."""
        return self._use_values_from(self.api.cache_exp_meta(self))

    def export_meta(self, target: Path) -> ExpApi:
        """Write this experiment's metadata into ``target`` (the cache's layout)."""
        return self._use_values_from(self.api.export_exp_meta(self, target))

    def create_run(
        self,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: Any = None,
    ) -> RunApi:
        """Declare a run in this experiment, to start later."""
        return self.api.create_run(self, name, tags, repo, parent)

    def start_run(
        self,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: Any = None,
    ) -> RunApi:
        """Start a run in this experiment."""
        return self.api.start_run(self, name, tags, repo, parent)

    def set_tags(self, tags: Mapping[str, Any]) -> ExpApi:
        """Set tags on this experiment."""
        self.api.set_tags_on_exp(self, tags)
        return self.update()  # type: ignore[return-value]
