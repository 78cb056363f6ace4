"""The metadata store interface: what a tracking backend must answer.

:class:`keel.store.sql.SqlStore` implements it over SQLite and PostgreSQL; the HTTP
backend (the platform server's REST client) implements the same methods, so the tracking
client and its test suite run unchanged against either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.entities import (
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationIndex,
    Metric,
    ModelVersion,
    Project,
    RegisteredModel,
    Run,
)

if TYPE_CHECKING:
    import numpy as np

Sort = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class MetricArrays:
    """Every point of one metric of one run, in history order (step, time, logging order)."""

    steps: np.ndarray  # int64
    timestamps: np.ndarray  # int64, ms since the epoch
    values: np.ndarray  # float64, NaN where a NaN was logged

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class MetricOverview:
    """The points of a long history a chart needs (see :mod:`keel.store.buckets`): every
    point below the first bucket, each bucket's lowest and highest, the first and the last
    point, in history order; ``points`` is how many logged points they stand for."""

    arrays: MetricArrays
    points: int


class MetadataStore(ABC):
    """Records of projects, experiments, runs, models, versions and datasets.

    Attributes:
        url: where the records live.
        query_timeout_s: the longest a read may run before it is stopped with
            :class:`~keel.errors.QueryTimeout` (None: no limit). Stores that run queries
            themselves honour it (the SQL store); the others ignore it.
    """

    url: str
    query_timeout_s: float | None = None

    @abstractmethod
    def get_or_create_project(self, name: str) -> Project: ...

    # experiments
    @abstractmethod
    def create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment: ...

    @abstractmethod
    def get_or_create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment: ...

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def is_experiment_id(self, value: str) -> bool:
        """Whether ``value`` has the form of this store's experiment ids (keel's: 32 hex
        digits). The client takes any other string given as an experiment for its name."""
        from keel.store.validation import ID_PATTERN

        return bool(ID_PATTERN.match(value))

    @abstractmethod
    def find_experiments(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Experiment]: ...

    @abstractmethod
    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None: ...

    # runs
    @abstractmethod
    def create_run(self, experiment_id: str, **fields: Any) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> Run: ...

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None: ...

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...

    def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """A metric's history as three columns (for charts of 100,000s of points).

        The same points in the same order as :meth:`get_metric_history`; stores that can read
        the columns without building a :class:`Metric` per point override this.
        """
        import numpy as np

        points = self.get_metric_history(run_id, key)
        n = len(points)
        return MetricArrays(
            np.fromiter((p.step for p in points), dtype=np.int64, count=n),
            np.fromiter((p.timestamp for p in points), dtype=np.int64, count=n),
            np.fromiter((p.value for p in points), dtype=float, count=n),
        )

    def metric_signature(self, run_id: str, key: str) -> tuple[int, int] | None:
        """(points, highest point id) of a metric's history, read without reading the points,
        or None when the store cannot tell cheaply. The history is append-only, so an equal
        signature means the same points: the UI keeps long charts by it."""
        return None

    def metric_overview(self, run_id: str, key: str, min_buckets: int) -> MetricOverview | None:
        """A long history's overview from its buckets, or None when it has fewer than
        ``min_buckets`` of them (a chart would be coarser than one of the points) or the
        store keeps none. Callers compare ``points`` with :meth:`metric_signature`."""
        return None

    def run_keys(self, experiment_id: str, sample: int = 200) -> tuple[list[str], list[str]]:
        """(param keys, metric keys), sorted, of the experiment's newest ``sample`` active
        runs: what the runs table's column picker offers (keys only older runs logged can
        still be typed)."""
        params: set[str] = set()
        metrics: set[str] = set()
        for run in self.find_runs(None, {"experiment_id": experiment_id}, limit=sample):
            params.update(run.params)
            metrics.update(run.metrics)
        return sorted(params), sorted(metrics)

    @abstractmethod
    def find_runs(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Run]: ...

    @abstractmethod
    def children(self, run_id: str) -> list[Run]: ...

    # artifacts (the bytes live in the artifact store; this records path → sha256)
    @abstractmethod
    def record_artifacts(
        self, owner_kind: str, owner_id: str, files: Sequence[ArtifactFile]
    ) -> None: ...

    @abstractmethod
    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactFile]: ...

    def replace_artifacts(self, run_id: str, path: str, files: Sequence[ArtifactFile]) -> None:
        """Make the run's files at or under ``path`` exactly ``files`` (what was there, a file
        or a folder, is dropped), atomically; a registered version's files never change
        (:class:`~keel.errors.Conflict`)."""
        from keel.errors import NotSupported

        raise NotSupported(
            f"{type(self).__name__} cannot replace a run's files: log to a new path_in_run"
        )

    @abstractmethod
    def referenced_blobs(self) -> set[str]: ...

    # models
    @abstractmethod
    def create_model(
        self,
        project: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> RegisteredModel: ...

    @abstractmethod
    def get_or_create_model(self, project: str, name: str) -> RegisteredModel: ...

    @abstractmethod
    def get_model(self, project: str, name: str) -> RegisteredModel: ...

    @abstractmethod
    def find_models(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RegisteredModel]: ...

    @abstractmethod
    def set_model_tags(self, project: str, name: str, tags: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def create_model_version(
        self, project: str, model: str, **fields: Any
    ) -> tuple[ModelVersion, bool]: ...

    def register_model_version(
        self, project: str, model: str, *, files: Sequence[ArtifactFile], **fields: Any
    ) -> tuple[ModelVersion, bool]:
        """Record a version's files on its run (``fields["run_id"]``) at ``path_in_run``,
        then register it: what ``Client.log_model_version`` calls once the blobs are stored.

        The version is visible only once its files are recorded. This default takes two
        calls (a writer killed between them leaves complete run files and no version); the
        SQL store does both in one transaction, and also drops files left under
        ``path_in_run`` by an earlier write, so that the path holds exactly these files.
        """
        if files:
            self.record_artifacts("run", fields["run_id"], files)
        return self.create_model_version(project, model, **fields)

    @abstractmethod
    def get_model_version(
        self, project: str, model: str, ref: int | str = "latest"
    ) -> ModelVersion: ...

    @abstractmethod
    def find_model_versions(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]: ...

    @abstractmethod
    def set_model_version_tags(self, version_id: str, tags: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def update_model_version_metrics(
        self, version_id: str, metrics: Mapping[str, float]
    ) -> ModelVersion:
        """Merge ``metrics`` into a version's metrics (a retest's newer values win)."""

    def rename_model(self, project: str, name: str, new_name: str) -> RegisteredModel:
        """Give a registered model a new name (its versions, tags and aliases go with it);
        :class:`~keel.errors.Conflict` if a model has that name."""
        from keel.errors import NotSupported

        raise NotSupported(f"{type(self).__name__} cannot rename models")

    def delete_model(self, project: str, name: str) -> None:
        """Delete a registered model with its versions, tags and aliases (their files stay
        their runs')."""
        from keel.errors import NotSupported

        raise NotSupported(f"{type(self).__name__} cannot delete models")

    def delete_model_version(self, project: str, model: str, version: int) -> None:
        """Delete a model version, its tags and the aliases pointing at it (its number is not
        given again; its files stay its run's)."""
        from keel.errors import NotSupported

        raise NotSupported(f"{type(self).__name__} cannot delete model versions")

    @abstractmethod
    def set_alias(self, project: str, model: str, alias: str, version: int) -> None: ...

    @abstractmethod
    def delete_alias(self, project: str, model: str, alias: str) -> None: ...

    # datasets
    @abstractmethod
    def create_dataset(self, project: str, name: str, **fields: Any) -> tuple[Dataset, bool]: ...

    @abstractmethod
    def get_dataset(self, project: str, name: str, version: int | str = "latest") -> Dataset: ...

    @abstractmethod
    def find_datasets(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Dataset]: ...

    @abstractmethod
    def link_dataset(self, dataset_id: str, run_id: str, role: str = "input") -> None: ...

    @abstractmethod
    def dataset_runs(self, dataset_id: str) -> list[tuple[str, str]]:
        """The (run id, role) pairs of the runs that made (``output``) or used (``input``) a
        dataset, ordered by role then run."""

    # invocation records
    @abstractmethod
    def record_invocations(
        self, version_id: str, batch: ArtifactFile, rows: Sequence[InvocationIndex]
    ) -> None:
        """Index a batch file of invocation records (its artifact row and one row per record),
        in one transaction."""

    @abstractmethod
    def find_invocations(
        self,
        version_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> list[InvocationIndex]:
        """A version's records from ``since`` to ``until`` (ms, inclusive), newest first."""

    def count_by_project(self, kind: str) -> dict[str, int]:
        """How many ``experiments``, (active) ``runs``, ``models`` or ``datasets`` (versions)
        each project holds; projects holding none are left out. This default reads every
        record; stores that can count override it."""
        from collections import Counter

        if kind == "experiments":
            return dict(Counter(e.project for e in self.find_experiments(None)))
        if kind == "runs":
            projects = {e.id: e.project for e in self.find_experiments(None)}
            return dict(Counter(projects.get(r.experiment_id, "?") for r in self.find_runs(None)))
        if kind == "models":
            return dict(Counter(m.project for m in self.find_models(None)))
        if kind == "datasets":
            return dict(Counter(d.project for d in self.find_datasets(None)))
        raise ValueError(f"count_by_project: unknown kind {kind!r}")

    # housekeeping
    @abstractmethod
    def purge_deleted_runs(self) -> tuple[list[str], list[str]]: ...
