"""``mlopus.mlflow.api.run``: a run with its API handle."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from keel.compat.mlopus.mlflow.api import entity
from keel.compat.mlopus.mlflow.api.common import schema, transfer
from keel.compat.mlopus.mlflow.api.mv import ModelVersionApi

A = TypeVar("A")


class RunApi(schema.Run, entity.EntityApi):
    """Run metadata with its API handle; ``with run:`` ends it (failed on an exception)."""

    def using(self, api: Any) -> RunApi:
        super().using(api)
        if isinstance(self.exp, entity.EntityApi):
            self.exp.using(api)
        return self

    def _get_latest_data(self) -> schema.Run:
        return self.api.get_run(self)

    def __enter__(self) -> RunApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self.end_run(succeeded := exc_type is None)
        return succeeded

    @property
    def url(self) -> str:
        """This run's web address."""
        return self.api.get_run_url(self, self.exp)

    def clean_cached_artifact(self, path_in_run: str = "") -> RunApi:
        self.api.clean_cached_run_artifact(self, path_in_run)
        return self

    def list_artifacts(self, path_in_run: str = "") -> transfer.LsResult:
        return self.api.list_run_artifacts(self, path_in_run)

    def cache_artifact(self, path_in_run: str = "") -> Path:
        return self.api.cache_run_artifact(self, path_in_run)

    def export_artifact(self, target: Path, path_in_run: str = "") -> Path:
        return self.api.export_run_artifact(self, target, path_in_run)

    def get_artifact(self, path_in_run: str = "") -> Path:
        return self.api.get_run_artifact(self, path_in_run)

    def place_artifact(
        self, target: Path, path_in_run: str = "", overwrite: bool = False, link: bool = True
    ) -> RunApi:
        self.api.place_run_artifact(self, target, path_in_run, overwrite, link)
        return self

    def load_artifact(self, loader: Callable[[Path], A], path_in_run: str = "") -> A:
        return self.api.load_run_artifact(self, loader, path_in_run)

    def log_artifact(
        self,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
    ) -> RunApi:
        self.api.log_run_artifact(
            self, source, path_in_run, keep_the_source, allow_duplication, use_cache
        )
        return self

    def log_model_version(
        self,
        model: Any,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool = False,
        use_cache: bool | None = None,
        version: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersionApi:
        return self.api.log_model_version(
            model, self, source, path_in_run, keep_the_source, allow_duplication, use_cache,
            version, tags,
        )  # fmt: skip

    def find_model_versions(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[ModelVersionApi]:
        return self.api.find_model_versions({**(query or {}), "run.id": self.id}, sorting)

    def cache_meta(self) -> RunApi:
        return self._use_values_from(self.api.cache_run_meta(self))

    def export_meta(self, target: Path) -> RunApi:
        return self._use_values_from(self.api.export_run_meta(self, target))

    def create_child(
        self, name: str | None = None, tags: Mapping[str, Any] | None = None, repo: Any = None
    ) -> RunApi:
        return self.api.create_run(self.exp, name, tags, repo, self)

    def start_child(
        self, name: str | None = None, tags: Mapping[str, Any] | None = None, repo: Any = None
    ) -> RunApi:
        return self.api.start_run(self.exp, name, tags, repo, self)

    @property
    def children(self) -> Iterator[RunApi]:
        return self.api.find_child_runs(parent=self)

    def resume(self) -> RunApi:
        return self._use_values_from(self.api.resume_run(self))

    def end_run(self, succeeded: bool = True) -> RunApi:
        return self._use_values_from(self.api.end_run(self, succeeded))

    def set_tags(self, tags: Mapping[str, Any]) -> RunApi:
        self.api.set_tags_on_run(self, tags)
        return self.update()  # type: ignore[return-value]

    def log_params(self, params: Mapping[str, Any]) -> RunApi:
        self.api.log_params(self, params)
        return self.update()  # type: ignore[return-value]

    def log_metrics(self, metrics: Mapping[str, Any]) -> RunApi:
        self.api.log_metrics(self, metrics)
        return self.update()  # type: ignore[return-value]
