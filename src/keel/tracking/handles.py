"""Handles: an entity plus the client that fetched it, with the verbs that act on it.

``client.get_run(id)`` returns a :class:`RunApi`; ``run.log_metrics(...)`` is the same as
``client.log_metrics(run, ...)``. Attribute reads (``run.params``, ``mv.version``) come
from the entity as it was fetched; ``refresh()`` reads it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from keel.entities import (
    ArtifactFile,
    Dataset,
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
)

if TYPE_CHECKING:
    from keel.tracking.client import Client

E = TypeVar("E")


class _Handle(Generic[E]):
    def __init__(self, client: Client, entity: E) -> None:
        self._client = client
        self._entity = entity

    @property
    def entity(self) -> E:
        """The plain record behind this handle."""
        return self._entity

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._entity, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._entity!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Handle) and other._entity == self._entity

    def __hash__(self) -> int:
        return hash(getattr(self._entity, "id", None))


class ExpApi(_Handle[Experiment]):
    """An experiment and what can be done with it."""

    def set_tags(self, tags: Mapping[str, Any] | None = None, **more: Any) -> ExpApi:
        """Set (or overwrite) tags on this experiment."""
        self._client.set_tags_on_exp(self, {**(tags or {}), **more})
        return self.refresh()

    def refresh(self) -> ExpApi:
        self._entity = self._client.get_exp(self.id).entity
        return self

    @property
    def url(self) -> str:
        """This experiment's web address."""
        return self._client.get_exp_url(self)

    def create_run(self, name: str | None = None, **kwargs: Any) -> RunApi:
        return self._client.create_run(self, name=name, **kwargs)

    def start_run(self, name: str | None = None, **kwargs: Any) -> RunApi:
        return self._client.start_run(self, name=name, **kwargs)

    def find_runs(self, query: Mapping[str, Any] | None = None, **kwargs: Any) -> list[RunApi]:
        query = {"$and": [{"experiment_id": self.id}, dict(query or {})]}
        return self._client.find_runs(query, **kwargs)


class RunApi(_Handle[Run]):
    """A run: log to it, read it, and use it as a context manager.

    Example:
        >>> with client.start_run("iris") as run:           # doctest: +SKIP
        ...     run.log_params({"C": 1.0})
        ...     run.log_metrics({"acc": 0.97}, step=1)
    """

    def __enter__(self) -> RunApi:
        if self._entity.status == "scheduled":
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("killed", error=exc)
        else:
            self.end("failed", error=exc)

    # lifecycle
    def start(self) -> RunApi:
        """Mark a scheduled run as running."""
        self._entity = self._client._update_run(self.id, status="running")
        return self

    def end(self, status: str = "finished", error: BaseException | str | None = None) -> RunApi:
        """Flush buffered metrics and close the run with a final status (and the exception
        it failed with, or the failure's text)."""
        self._entity = self._client.end_run(self, status, error=error).entity
        return self

    def refresh(self) -> RunApi:
        self._client.flush(self)
        self._entity = self._client.get_run(self.id).entity
        return self

    def resume(self) -> RunApi:
        """Set this run running again."""
        self._entity = self._client.resume_run(self).entity
        return self

    @property
    def url(self) -> str:
        """This run's web address."""
        return self._client.get_run_url(self)

    # logging
    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> RunApi:
        """Log params (write-once: a different value for a logged key is a Conflict)."""
        self._client.log_params(self, {**(params or {}), **more})
        return self

    def log_param(self, key: str, value: Any) -> RunApi:
        return self.log_params({key: value})

    def log_metrics(
        self,
        metrics: Mapping[str, float] | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        **more: float,
    ) -> RunApi:
        """Append metric points (buffered; written in batches)."""
        self._client.log_metrics(self, {**(metrics or {}), **more}, step=step, timestamp=timestamp)
        return self

    def log_metric(self, key: str, value: float, step: int | None = None) -> RunApi:
        return self.log_metrics({key: value}, step=step)

    def set_tags(self, tags: Mapping[str, Any] | None = None, **more: Any) -> RunApi:
        self._client.set_tags_on_run(self, {**(tags or {}), **more})
        return self

    def flush(self) -> RunApi:
        self._client.flush(self)
        return self

    def metric_history(self, key: str) -> list[Metric]:
        """Every logged point of a metric, by step then time."""
        return self._client.get_metric_history(self, key)

    # family
    def start_child(self, name: str | None = None, **kwargs: Any) -> RunApi:
        """Start a nested run under this one."""
        return self._client.start_run(self.experiment_id, name=name, parent=self, **kwargs)

    def create_child(self, name: str | None = None, **kwargs: Any) -> RunApi:
        return self._client.create_run(self.experiment_id, name=name, parent=self, **kwargs)

    @property
    def children(self) -> list[RunApi]:
        """The runs started under this one."""
        return self._client.get_child_runs(self)

    @property
    def parent(self) -> RunApi | None:
        return None if self.parent_id is None else self._client.get_run(self.parent_id)

    @property
    def exp(self) -> ExpApi:
        return self._client.get_exp(self.experiment_id)

    # artifacts
    def log_artifact(
        self,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        **kwargs: Any,
    ) -> list[ArtifactFile]:
        return self._client.log_run_artifact(self, source, path_in_run, **kwargs)

    def list_artifacts(self, path_in_run: str = "") -> list[ArtifactFile]:
        return self._client.list_run_artifact(self, path_in_run)

    def get_artifact(self, path_in_run: str = "") -> Path:
        return self._client.get_run_artifact(self, path_in_run)

    def load_artifact(self, loader: Callable[[Path], Any], path_in_run: str = "") -> Any:
        return self._client.load_run_artifact(self, loader, path_in_run)

    def place_artifact(self, target: Path | str, path_in_run: str = "", **kwargs: Any) -> Path:
        return self._client.place_run_artifact(self, target, path_in_run, **kwargs)

    def export_artifact(self, target: Path | str, path_in_run: str = "") -> Path:
        return self._client.export_run_artifact(self, target, path_in_run)

    def log_model_version(
        self, model: str | ModelApi, source: Path | str | Callable[[Path], None], **kwargs: Any
    ) -> ModelVersionApi:
        return self._client.log_model_version(model, self, source, **kwargs)

    def log_dataset(
        self, name: str, source: Path | str | Callable[[Path], None], **kwargs: Any
    ) -> DatasetApi:
        return self._client.log_dataset(name, source, run=self, **kwargs)

    def use_dataset(self, dataset: DatasetApi | Dataset) -> RunApi:
        """Record that this run read a dataset (lineage)."""
        self._client.link_dataset(dataset, self)
        return self

    @property
    def duration_seconds(self) -> float | None:
        start, end = self.start_time, self.end_time
        if start is None:
            return None
        return ((end or int(time.time() * 1000)) - start) / 1000


class ModelApi(_Handle[RegisteredModel]):
    """A registered model."""

    def set_tags(self, tags: Mapping[str, Any] | None = None, **more: Any) -> ModelApi:
        self._client.set_tags_on_model(self, {**(tags or {}), **more})
        return self.refresh()

    def refresh(self) -> ModelApi:
        self._entity = self._client.get_model(self.name).entity
        return self

    @property
    def url(self) -> str:
        """This model's web address."""
        return self._client.get_model_url(self)

    def get_version(self, ref: int | str = "latest") -> ModelVersionApi:
        return self._client.get_model_version((self.name, ref))

    def find_versions(
        self, query: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> list[ModelVersionApi]:
        query = {"$and": [{"model.name": self.name}, dict(query or {})]}
        return self._client.find_model_versions(query, **kwargs)

    def log_version(
        self, run: RunApi | str, source: Path | str | Callable[[Path], None], **kwargs: Any
    ) -> ModelVersionApi:
        return self._client.log_model_version(self, run, source, **kwargs)


class ModelVersionApi(_Handle[ModelVersion]):
    """One version of a registered model."""

    def set_alias(self, alias: str) -> ModelVersionApi:
        """Point an alias (``production``, ``staging``…) at this version, moving it if set."""
        self._client.set_alias(self, alias)
        return self.refresh()

    def remove_alias(self, alias: str) -> ModelVersionApi:
        self._client.delete_alias(self.model, alias)
        return self.refresh()

    def set_tags(self, tags: Mapping[str, Any] | None = None, **more: Any) -> ModelVersionApi:
        self._client.set_tags_on_model_version(self, {**(tags or {}), **more})
        return self.refresh()

    def refresh(self) -> ModelVersionApi:
        self._entity = self._client.get_model_version((self.model, self.version)).entity
        return self

    @property
    def url(self) -> str:
        """This version's web address."""
        return self._client.get_model_version_url(self)

    def cache(self) -> ModelVersionApi:
        """Cache this version's metadata and artifact, for offline use."""
        self._client.cache_model_version_meta(self)
        self._client.cache_model_artifact(self)
        return self

    @property
    def run(self) -> RunApi | None:
        return None if self.run_id is None else self._client.get_run(self.run_id)

    def get_artifact(self) -> Path:
        return self._client.get_model_artifact(self)

    def load_artifact(self, loader: Callable[[Path], Any]) -> Any:
        return self._client.load_model_artifact(self, loader)

    def place_artifact(self, target: Path | str, **kwargs: Any) -> Path:
        return self._client.place_model_artifact(self, target, **kwargs)

    def export_artifact(self, target: Path | str) -> Path:
        return self._client.export_model_artifact(self, target)

    def list_artifacts(self) -> list[ArtifactFile]:
        return self._client.list_model_artifact(self)


class DatasetApi(_Handle[Dataset]):
    """A dataset version."""

    def get_files(self) -> Path:
        """A local, write-protected folder with this dataset's files."""
        return self._client.get_dataset_files(self)

    def list_files(self) -> list[ArtifactFile]:
        return self._client.list_dataset_files(self)

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(run id, role) of every run that produced or read this version."""
        return self._client.dataset_lineage(self)
