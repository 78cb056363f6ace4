"""``keel.Client``: the user's entry point to experiments, runs, models and datasets.

The verbs and their names follow mlopus' MLflow API (``get_exp``, ``start_run``,
``log_run_artifact``, ``log_model_version``, ``find_runs`` …), so its users can move over.
The client owns the policies users feel: metric buffering, environment capture, the local
artifact cache, offline mode. The store records; the artifact store moves bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from keel.entities import (
    TERMINAL_STATUSES,
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationRecord,
    Metric,
    Run,
)
from keel.errors import (
    ArtifactError,
    Conflict,
    InvalidInput,
    KeelError,
    NotFound,
    NotInProject,
    Offline,
)
from keel.paths import check_local_target, check_path_segment, check_relative_path
from keel.store.validation import check_key, check_metric_value, check_step
from keel.tracking.buffer import MetricBuffer
from keel.tracking.environment import capture_environment, current_author, installed_distributions
from keel.tracking.handles import DatasetApi, ExpApi, ModelApi, ModelVersionApi, RunApi
from keel.tracking.metacache import MetadataCache
from keel.tracking.settings import ClientSettings, resolve_settings

if TYPE_CHECKING:
    from keel.artifacts import ArtifactCache, ArtifactStore
    from keel.store.base import MetadataStore, MetricArrays

A = TypeVar("A")
Source = Path | str | Callable[[Path], None]
ExpRef = ExpApi | Experiment | str
RunRef = RunApi | Run | str
ModelRef = ModelApi | str
VersionRef = ModelVersionApi | tuple[str, int | str] | str


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ProjectSummary:
    """What one project of a store holds (see :meth:`Client.projects_summary`)."""

    name: str
    experiments: int = 0
    runs: int = 0
    models: int = 0
    datasets: int = 0

    def count(self, kind: str) -> int:
        """The count of ``experiments``, ``runs``, ``models`` or ``datasets``."""
        return int(getattr(self, kind))


#: what ``projects_with`` looks up, by kind: the store's finder of that kind
_FINDERS = {"experiment": "find_experiments", "model": "find_models", "dataset": "find_datasets"}


class Client:
    """Tracking and registry client over an embedded or shared keel store.

    Args:
        store: metadata store: a folder (embedded SQLite store), ``sqlite:///FILE``,
            ``postgresql://USER@HOST:PORT/DB`` or a keel platform server
            ``http(s)://HOST:PORT``. Default: env ``KEEL_STORE``, keel.yml ``store:``, else
            ``./.keel``.
        artifacts: artifact store URL (local folder, ``s3://bucket/prefix``, any fsspec URL,
            or a keel server ``http(s)://…``). Default: env ``KEEL_ARTIFACTS``, keel.yml
            ``store.artifacts``, else the server when the store is one, else the
            ``artifacts`` folder beside an embedded store.
        project: the project everything is filed under. Default: env ``KEEL_PROJECT``,
            keel.yml ``project:``, else ``default``.
        cache_dir: local cache of artifacts and metadata. Default: env ``KEEL_CACHE_DIR``,
            else ``cache`` beside an embedded store, else ``~/.cache/keel``.
        config: path of keel.yml (default: env ``KEEL_CONFIG``, else ``./keel.yml`` if any).
        offline: serve only cached metadata and artifacts (see :attr:`in_offline_mode`).
        flush_interval: seconds between background flushes of buffered metrics.
        storage_options: options of a remote (fsspec) artifact store: credentials, endpoint.
            Default: env ``KEEL_STORAGE_OPTIONS`` (a JSON object), keel.yml
            ``store.storage_options``.
        token: API token of a keel server store (``keel tokens create``). Default: env
            ``KEEL_TOKEN``.
        always_pull_artifacts: check the store for a run's current files on every artifact
            read (default); False: a complete cached copy is used without asking the store.
        pull_artifacts_in_offline_mode: an offline client may still fetch artifacts from
            the artifact store, for runs whose file list is in the metadata cache.
        cache_local_artifacts: copy blobs of an artifact store on this machine into the
            cache instead of hardlinking them (hardlinks cost no disk space).
        temp_artifacts_dir: where dumper callbacks write before the upload (a failed upload
            keeps them there). Default: ``tmp`` in the cache folder.
        progress: show a progress bar on stderr while files are uploaded or downloaded.

    Example:
        >>> import keel                                      # doctest: +SKIP
        >>> client = keel.Client()
        >>> with client.start_run("iris") as run:
        ...     run.log_params({"C": 1.0}).log_metrics({"acc": 0.97})
    """

    def __init__(
        self,
        store: str | None = None,
        artifacts: str | None = None,
        project: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        config: str | os.PathLike[str] | None = None,
        offline: bool = False,
        flush_interval: float = 2.0,
        storage_options: Mapping[str, Any] | None = None,
        token: str | None = None,
        always_pull_artifacts: bool = True,
        pull_artifacts_in_offline_mode: bool = False,
        cache_local_artifacts: bool = False,
        temp_artifacts_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        self.settings: ClientSettings = resolve_settings(
            store, artifacts, project, cache_dir, config
        )
        self.always_pull_artifacts = always_pull_artifacts
        self.pull_artifacts_in_offline_mode = pull_artifacts_in_offline_mode
        self.cache_local_artifacts = cache_local_artifacts
        self.progress = progress
        self._temp_artifacts_dir = temp_artifacts_dir
        if storage_options is not None:
            self.settings = replace(self.settings, storage_options=dict(storage_options))
        # kept out of settings (and so out of every repr): it is a secret
        self._token = token or os.environ.get("KEEL_TOKEN") or None
        self.project = self.settings.project
        self.offline = offline
        self._storage_options = dict(self.settings.storage_options)
        self._flush_interval = flush_interval
        self._store: MetadataStore | None = None
        self._artifact_store: ArtifactStore | None = None
        self._artifact_cache: ArtifactCache | None = None
        self.meta = MetadataCache(self.settings.cache_dir)
        self._buffer = MetricBuffer(self._write_metrics, interval=flush_interval)
        self._valid_keys: set[str] = set()

    def __repr__(self) -> str:
        mode = ", offline" if self.offline else ""
        return f"Client(project={self.project!r}, store={self.store_url!r}{mode})"

    # --- plumbing ------------------------------------------------------------------------

    @property
    def store_url(self) -> str:
        from keel.store.engine import mask_url

        return mask_url(self.settings.store)

    def _online(self, call: str) -> MetadataStore:
        if self.offline:
            raise Offline(
                f"{call} needs the metadata store, but this client is in offline mode: "
                "use an online client (keel.Client()) or a cached object"
            )
        if self._store is None:
            from keel.store import open_store

            self._store = open_store(self.settings.store, token=self._token)
        return self._store

    @property
    def store(self) -> MetadataStore:
        """The metadata store (opened, and created if new, on first use)."""
        return self._online("store")

    @property
    def artifact_store(self) -> ArtifactStore:
        if self._artifact_store is None:
            from keel.artifacts import open_artifact_store

            # by the URL's scheme: a folder, fsspec, a keel server or an MLflow server
            self._artifact_store = open_artifact_store(
                self.settings.artifacts, self._storage_options or None, token=self._token
            )
        return self._artifact_store

    @property
    def artifact_cache(self) -> ArtifactCache:
        if self._artifact_cache is None:
            from keel.artifacts import ArtifactCache

            self._artifact_cache = ArtifactCache(self.settings.cache_dir)
        return self._artifact_cache

    @property
    def cache_dir(self) -> Path:
        """The local cache of artifacts and metadata."""
        return self.settings.cache_dir

    @property
    def temp_artifacts_dir(self) -> Path:
        """Where dumper callbacks write artifacts before they are uploaded."""
        if self._temp_artifacts_dir is None:
            return self.settings.cache_dir / "tmp"
        return Path(self._temp_artifacts_dir).expanduser().resolve()

    @property
    def in_offline_mode(self) -> Client:
        """A copy of this client that only reads the local cache.

        Anything that needs the store raises :class:`keel.errors.Offline` naming the call.
        """
        self.flush()
        return self.copy(update={"offline": True})

    def copy(self, update: Mapping[str, Any] | None = None) -> Client:
        """A new client with this one's settings, those in ``update`` changed.

        The keys are the constructor's arguments, e.g.
        ``client.copy(update={"cache_dir": export, "offline": True})``.
        """
        current: dict[str, Any] = {
            "store": self.settings.store,
            "artifacts": self.settings.artifacts,
            "project": self.project,
            "cache_dir": self.settings.cache_dir,
            "offline": self.offline,
            "flush_interval": self._flush_interval,
            "storage_options": self._storage_options,
            "token": self._token,
            "always_pull_artifacts": self.always_pull_artifacts,
            "pull_artifacts_in_offline_mode": self.pull_artifacts_in_offline_mode,
            "cache_local_artifacts": self.cache_local_artifacts,
            "temp_artifacts_dir": self._temp_artifacts_dir,
            "progress": self.progress,
        }
        unknown = sorted(set(update or {}) - set(current))
        if unknown:
            raise InvalidInput(
                f"Client.copy: unknown setting(s) {', '.join(unknown)}; "
                f"use one of {', '.join(sorted(current))}"
            )
        return Client(**{**current, **(update or {})})

    def flush(self, run: RunRef | None = None) -> None:
        """Write buffered metrics now (of one run, or all)."""
        self._buffer.flush(None if run is None else _run_id(run))

    def close(self) -> None:
        """Flush buffered metrics, stop the background flusher and close the connections of
        a server store (a later call opens new ones)."""
        self._buffer.close()
        for store in (self._store, self._artifact_store):
            close = getattr(store, "close", None)  # server-backed stores hold connections
            if close is not None:
                close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_metrics(self, run_id: str, points: Sequence[Metric]) -> None:
        self._online("log_metrics").log_batch(run_id, metrics=points)

    # --- where things are ------------------------------------------------------------------

    def projects_summary(self) -> list[ProjectSummary]:
        """What each project of the store holds: experiments, active runs, models and dataset
        versions, by project name (projects holding nothing are left out).

        Example:
            >>> [(p.name, p.runs) for p in client.projects_summary()]   # doctest: +SKIP
            [('demo', 4), ('examples', 2)]
        """
        store = self._online("projects_summary")
        counts = {
            kind: store.count_by_project(kind)
            for kind in ("experiments", "runs", "models", "datasets")
        }
        names = sorted({name for found in counts.values() for name in found})
        return [
            ProjectSummary(name, **{kind: found.get(name, 0) for kind, found in counts.items()})
            for name in names
        ]

    def projects_with(self, kind: str, name: str) -> list[str]:
        """The projects of this store holding an ``experiment``, ``model`` or ``dataset``
        named ``name`` (sorted; this client's project included when it holds one)."""
        if kind not in _FINDERS:
            raise InvalidInput(f"projects_with: kind must be one of {', '.join(_FINDERS)}")
        finder = getattr(self._online("projects_with"), _FINDERS[kind])
        return sorted({found.project for found in finder(None, {"name": name})})

    def _not_in_project(self, exc: NotFound, kind: str, name: str) -> NotFound:
        """``exc`` as a :class:`~keel.errors.NotInProject` naming the other projects that hold
        ``name``, when this project holds none; ``exc`` itself otherwise (the name exists here
        and only its version is missing, or the lookup fails)."""
        try:
            holders = self.projects_with(kind, name)
        except KeelError:  # a hint that cannot be had must not hide the error itself
            return exc
        if self.project in holders:
            return exc
        elsewhere = tuple(holders)
        message = f"no {kind} named {name!r} in project {self.project!r}"
        if len(elsewhere) == 1:
            message += f"; it is in project {elsewhere[0]!r}"
        elif elsewhere:
            message += f"; it is in projects {', '.join(map(repr, elsewhere))}"
        return NotInProject(message, kind, name, self.project, elsewhere)

    # --- experiments ---------------------------------------------------------------------

    def _exp_id(self, exp: ExpRef) -> str:
        if isinstance(exp, ExpApi | Experiment):
            return exp.id
        if isinstance(exp, str):
            return exp
        raise InvalidInput(f"expected an experiment, its id or its handle, got {exp!r}")

    def get_exp(self, exp: ExpRef) -> ExpApi:
        """An experiment by id (or handle)."""
        exp_id = self._exp_id(exp)
        if self.offline:
            cached = self.meta.experiment(exp_id)
            if cached is None:
                raise Offline(f"get_exp({exp_id!r}): not in the offline cache")
            return ExpApi(self, cached)
        entity = self._online("get_exp").get_experiment(exp_id)
        self.meta.put_experiment(entity)
        return ExpApi(self, entity)

    def get_exp_by_name(self, name: str) -> ExpApi:
        found = self._online("get_exp_by_name").find_experiments(
            self.project, {"name": name}, limit=1
        )
        if not found:
            missing = NotFound(f"no experiment named {name!r} in project {self.project!r}")
            raise self._not_in_project(missing, "experiment", name)
        return ExpApi(self, found[0])

    def create_exp(self, name: str, tags: Mapping[str, Any] | None = None) -> ExpApi:
        """Create an experiment (Conflict if the name is taken in this project)."""
        return ExpApi(self, self._online("create_exp").create_experiment(self.project, name, tags))

    def get_or_create_exp(self, name: str, tags: Mapping[str, Any] | None = None) -> ExpApi:
        """The experiment with this name, created if missing."""
        return ExpApi(
            self,
            self._online("get_or_create_exp").get_or_create_experiment(self.project, name, tags),
        )

    def find_exps(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sorting: Sequence[tuple[str, int]] | None = None,
    ) -> list[ExpApi]:
        """Experiments matching a MongoDB-style query (``{"tags.team": "vision"}``)."""
        found = self._online("find_exps").find_experiments(
            self.project, query, sort or sorting, limit, offset
        )
        return [ExpApi(self, e) for e in found]

    def set_tags_on_exp(self, exp: ExpRef, tags: Mapping[str, Any]) -> None:
        self._online("set_tags_on_exp").set_experiment_tags(self._exp_id(exp), tags)

    # --- web addresses (mlopus' get_*_url; no store call, so they work offline) ----------

    def _url(self, keel_path: str, mlflow_path: str) -> str:
        """The address of a page: the keel server's UI, an MLflow server's UI, or for a
        store without a UI the store's location with the page as fragment."""
        from urllib.parse import quote

        store = self.settings.store
        lower = store.lower()
        if lower.startswith("mlflow+"):
            return f"{store[len('mlflow+') :].rstrip('/')}/#/{quote(mlflow_path, safe='/')}"
        if lower.startswith(("http://", "https://")):
            return f"{store.rstrip('/')}/{quote(keel_path, safe='/#')}"
        from keel.tracking.settings import embedded_folder

        folder = embedded_folder(store)
        base = folder.as_uri() if folder is not None else self.store_url
        return f"{base}#/{quote(keel_path, safe='/#')}"

    def get_exp_url(self, exp: ExpRef) -> str:
        """The web address of an experiment."""
        exp_id = self._exp_id(exp)
        return self._url(f"experiments/{exp_id}", f"experiments/{exp_id}")

    def get_run_url(self, run: RunRef, exp: ExpRef | None = None) -> str:
        """The web address of a run (``exp`` is only needed by an MLflow server's UI)."""
        run_id = _run_id(run)
        if exp is not None:
            exp_id = self._exp_id(exp)
        elif isinstance(run, RunApi | Run):
            exp_id = run.experiment_id
        elif self.settings.store.lower().startswith("mlflow+"):
            exp_id = self.get_run(run_id).experiment_id
        else:
            exp_id = ""
        return self._url(f"runs/{run_id}", f"experiments/{exp_id}/runs/{run_id}")

    def get_model_url(self, model: ModelRef) -> str:
        """The web address of a registered model."""
        name = self._model_name(model)
        return self._url(f"models/{name}", f"models/{name}")

    def get_model_version_url(self, model_version: VersionRef) -> str:
        """The web address of a model version (its model's page, at that version)."""
        name, ref = self._version_ref(model_version)
        if not str(ref).isdigit():
            mv = self.get_model_version(model_version)
            name, ref = mv.model, mv.version
        return self._url(f"models/{name}#v{ref}", f"models/{name}/versions/{ref}")

    # --- the metadata cache (mlopus' cache_*_meta / export_*_meta) -----------------------

    def cache_exp_meta(self, exp: ExpRef) -> ExpApi:
        """Fetch an experiment and save it in the metadata cache (for offline use)."""
        return self._online_copy("cache_exp_meta").get_exp(exp)

    def cache_run_meta(self, run: RunRef) -> RunApi:
        """Fetch a run (and its experiment) and save them in the metadata cache."""
        fetched = self._online_copy("cache_run_meta").get_run(run)
        self.meta.put_experiment(self.store.get_experiment(fetched.experiment_id))
        return fetched

    def cache_model_meta(self, model: ModelRef) -> ModelApi:
        """Fetch a registered model and save it in the metadata cache."""
        return self._online_copy("cache_model_meta").get_model(model)

    def cache_model_version_meta(self, model_version: VersionRef) -> ModelVersionApi:
        """Fetch a model version (and its model) and save them in the metadata cache."""
        return self._online_copy("cache_model_version_meta").get_model_version(model_version)

    def _online_copy(self, call: str) -> Client:
        self._online(call)
        return self

    def export_exp_meta(self, exp: ExpRef, target: Path | str) -> ExpApi:
        """Write an experiment's metadata into ``target`` with the cache's layout."""
        export = MetadataCache(self._export_target(target))
        fetched = self.get_exp(exp)
        export.put_experiment(fetched.entity)
        return fetched

    def export_run_meta(self, run: RunRef, target: Path | str) -> RunApi:
        """Write a run's metadata (and its experiment's) into ``target``."""
        export = MetadataCache(self._export_target(target))
        fetched = self.get_run(run)
        export.put_run(fetched.entity)
        self.export_exp_meta(fetched.experiment_id, target)
        return fetched

    def export_model_meta(self, model: ModelRef, target: Path | str) -> ModelApi:
        """Write a registered model's metadata into ``target``."""
        export = MetadataCache(self._export_target(target))
        fetched = self.get_model(model)
        export.put_model(fetched.entity)
        return fetched

    def export_model_version_meta(
        self, model_version: VersionRef, target: Path | str
    ) -> ModelVersionApi:
        """Write a model version's metadata (and its model's) into ``target``."""
        export = MetadataCache(self._export_target(target))
        fetched = self.get_model_version(model_version)
        export.put_version(self.project, fetched.entity)
        self.export_model_meta(fetched.model, target)
        return fetched

    def _export_target(self, target: Path | str) -> Path:
        """``target`` as an export folder: not the cache, nothing inside it, no parent of it
        (an export there would copy the cache into itself or be wiped with it)."""
        from keel.errors import IllegalPath

        place = check_local_target(target, "export target").expanduser().resolve()
        cache = self.settings.cache_dir.resolve()
        if place.is_relative_to(cache) or cache.is_relative_to(place):
            raise IllegalPath(
                f"cannot export to {place}: it is the cache {cache}, inside it or a parent "
                "of it; export to a folder outside the cache"
            )
        return place

    # --- cleaning the cache (mlopus' clean_*) ---------------------------------------------

    def clean_all_cache(self) -> None:
        """Remove every cached artifact and all cached metadata (the store keeps them)."""
        for name in ("meta", "runs", "blobs", "datasets"):
            _remove_tree(self.settings.cache_dir / name)

    def clean_temp_artifacts(self) -> None:
        """Remove what dumper callbacks left in :attr:`temp_artifacts_dir`."""
        _remove_tree(self.temp_artifacts_dir)

    def clean_cached_run_artifact(self, run: RunRef, path_in_run: str = "") -> None:
        """Remove a run artifact's cached copy (the store keeps it)."""
        prefix = check_artifact_path(path_in_run, allow_empty=True)
        root = self.meta.run_artifacts_dir(_run_id(run))
        _remove_tree(root / prefix if prefix else root)

    def clean_cached_model_artifact(self, model_version: VersionRef) -> None:
        """Remove a model version artifact's cached copy."""
        mv = self.get_model_version(model_version)
        if mv.run_id is not None:
            self.clean_cached_run_artifact(mv.run_id, mv.path_in_run)

    def _resolve_exp_for_run(self, exp: ExpRef) -> str:
        if isinstance(exp, ExpApi | Experiment):
            return exp.id
        if isinstance(exp, str):
            # an id in the store's own form (keel's 32 hex digits, MLflow's numbers), else a name
            if self._online("start_run").is_experiment_id(exp):
                return exp
            return self.get_or_create_exp(exp).id
        raise InvalidInput(f"expected an experiment, its id or name, got {exp!r}")

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        exp: ExpRef,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: RunRef | None = None,
        kind: str = "tracking",
    ) -> RunApi:
        """Declare a run (status ``scheduled``) to start later with ``run.start()``.

        ``exp`` is an experiment handle, id, or name (created if missing).
        """
        return self._new_run(exp, name, tags, parent, kind, "scheduled", repo)

    def start_run(
        self,
        exp: ExpRef,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: RunRef | None = None,
        kind: str = "tracking",
    ) -> RunApi:
        """Start a run. Use it as a context manager: finished on success, failed on an
        exception (with the traceback recorded), killed on Ctrl-C."""
        return self._new_run(exp, name, tags, parent, kind, "running", repo)

    def _new_run(
        self,
        exp: ExpRef,
        name: str | None,
        tags: Mapping[str, Any] | None,
        parent: RunRef | None,
        kind: str,
        status: str,
        repo: str | None,
    ) -> RunApi:
        if repo is not None:
            raise InvalidInput("per-run artifact repositories are not supported: set artifacts=")
        store = self._online("start_run")
        exp_id = self._resolve_exp_for_run(exp)
        run = store.create_run(
            exp_id,
            name=name,
            kind=kind,
            status=status,
            parent_id=None if parent is None else _run_id(parent),
            tags=tags,
            author=current_author(),
            environment=capture_environment(),
        )
        return RunApi(self, run)

    def get_run(self, run: RunRef) -> RunApi:
        """A run by id (or handle), with its params, tags and latest metrics."""
        run_id = _run_id(run)
        if self.offline:
            cached = self.meta.run(run_id)
            if cached is None:
                raise Offline(f"get_run({run_id!r}): not in the offline cache")
            return RunApi(self, cached)
        self._buffer.flush(run_id)
        entity = self._online("get_run").get_run(run_id)
        self.meta.put_run(entity)
        return RunApi(self, entity)

    def find_runs(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sorting: Sequence[tuple[str, int]] | None = None,
        include_deleted: bool = False,
    ) -> list[RunApi]:
        """Runs matching a MongoDB-style query over attributes, ``params.*``, ``metrics.*``
        (latest value), ``tags.*`` and ``exp.*``.

        Example:
            >>> client.find_runs({"metrics.acc": {"$gt": 0.9}}, sort=[("metrics.acc", -1)],
            ...                  limit=10)                   # doctest: +SKIP
        """
        store = self._online("find_runs")
        self._buffer.flush()
        found = store.find_runs(
            self.project, query, sort or sorting, limit, offset, include_deleted=include_deleted
        )
        return [RunApi(self, r) for r in found]

    def get_child_runs(self, run: RunRef) -> list[RunApi]:
        return [RunApi(self, r) for r in self._online("children").children(_run_id(run))]

    def find_child_runs(self, parent: RunRef) -> list[RunApi]:
        """The runs started under ``parent`` (mlopus' name of :meth:`get_child_runs`)."""
        return self.get_child_runs(parent)

    def resume_run(self, run: RunRef) -> RunApi:
        """Set an ended (or scheduled) run running again (its end time is set anew when it
        ends)."""
        entity = self._update_run(_run_id(run), status="running", end_time=None)
        return RunApi(self, entity)

    def _update_run(self, run_id: str, **fields: Any) -> Run:
        return self._online("update_run").update_run(run_id, **fields)

    def end_run(
        self, run: RunRef, status: str = "finished", error: BaseException | str | None = None
    ) -> RunApi:
        """Flush the run's metrics and set its final status (and failure, if any).

        ``error`` is the exception the run failed with (its traceback is recorded), or the
        text to record instead (a traceback with secrets already masked).
        """
        if status not in TERMINAL_STATUSES:
            raise InvalidInput(
                f"a run ends as one of {', '.join(TERMINAL_STATUSES)}, not {status!r}"
            )
        run_id = _run_id(run)
        failure = error if isinstance(error, str) or error is None else None
        if isinstance(error, BaseException):
            failure = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        flush_error: BaseException | None = None
        try:
            self._buffer.flush(run_id)
        except Exception as exc:  # still close the run; report after
            flush_error = exc
        entity = self._update_run(run_id, status=status, end_time=_now(), failure=failure)
        if flush_error is not None:
            raise flush_error
        return RunApi(self, entity)

    def delete_run(self, run: RunRef) -> None:
        """Mark a run deleted (``keel gc`` purges it later); restore with restore_run."""
        self._update_run(_run_id(run), lifecycle="deleted")

    def restore_run(self, run: RunRef) -> None:
        self._update_run(_run_id(run), lifecycle="active")

    def log_params(self, run: RunRef, params: Mapping[str, Any]) -> None:
        """Log params; each key is write-once (a different value raises Conflict)."""
        self._online("log_params").log_batch(_run_id(run), params=params)

    def log_metrics(
        self,
        run: RunRef,
        metrics: Mapping[str, Any],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Append metric points to the run's history (buffered, flushed in batches)."""
        if self.offline:
            raise Offline("log_metrics needs the metadata store, but this client is offline")
        run_id = _run_id(run)
        ts = _now() if timestamp is None else int(timestamp)
        step = 0 if step is None else check_step("metrics", step)
        points = []
        valid = self._valid_keys
        for key, value in _flat_metrics(metrics).items():
            if key not in valid:
                check_key(key, "metric")
                valid.add(key)
            points.append(Metric(key, check_metric_value(key, value), step, ts))
        self._buffer.add(run_id, points)

    def log_batch(
        self,
        run: RunRef,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write many metric points, params and tags in one transaction, unbuffered."""
        run_id = _run_id(run)
        checked = []
        now = _now()
        for m in metrics:
            if m.key not in self._valid_keys:
                check_key(m.key, "metric")
                self._valid_keys.add(m.key)
            value = m.value if type(m.value) is float else check_metric_value(m.key, m.value)
            step = m.step if type(m.step) is int else check_step(m.key, m.step)
            timestamp = m.timestamp if type(m.timestamp) is int and m.timestamp else now
            if value is m.value and step is m.step and timestamp is m.timestamp:
                checked.append(m)
            else:
                checked.append(Metric(m.key, value, step, int(timestamp)))
        self._online("log_batch").log_batch(run_id, params=params, metrics=checked, tags=tags)

    def log_metric(self, run: RunRef, key: str, value: float, step: int | None = None) -> None:
        self.log_metrics(run, {key: value}, step=step)

    def get_metric_history(self, run: RunRef, key: str) -> list[Metric]:
        run_id = _run_id(run)
        self._buffer.flush(run_id)
        return self._online("get_metric_history").get_metric_history(run_id, key)

    def get_metric_arrays(self, run: RunRef, key: str) -> MetricArrays:
        """The history of a metric as numpy arrays (steps, timestamps, values), in the order
        of :meth:`get_metric_history`: for long histories, several times faster to read."""
        run_id = _run_id(run)
        self._buffer.flush(run_id)
        return self._online("get_metric_history").get_metric_arrays(run_id, key)

    def set_tags_on_run(self, run: RunRef, tags: Mapping[str, Any]) -> None:
        self._online("set_tags_on_run").log_batch(_run_id(run), tags=tags)

    # --- run artifacts -------------------------------------------------------------------

    def log_run_artifact(
        self,
        run: RunRef,
        source: Source,
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
    ) -> list[ArtifactFile]:
        """Store a file or folder as an artifact of the run.

        Args:
            run: the run (handle or id).
            source: a path, or a dumper callback ``fn(path)`` that writes the artifact to
                ``path`` (a file or a folder). If the upload fails, the dumped files are
                kept and the error says where.
            path_in_run: where in the run (``a/b/c``); defaults to the source's name.
            keep_the_source: for a callback, keep the dumped files after a successful upload.
            allow_duplication: accepted for mlopus compatibility; identical content is
                always stored once.
            use_cache: also place the files in the local cache right away.

        Logging again at a path replaces what was there (a file by a folder and back) in one
        step: the run then lists only the new files. A path holding a registered model
        version's files is a :class:`~keel.errors.Conflict` (a version's files never change).

        Returns:
            The stored files (path in run, sha256, size).
        """
        run_id = _run_id(run)
        store = self._online("log_run_artifact")
        with self._prepared_source(source, path_in_run, keep_the_source) as (local, dest):
            files = self._upload(local, dest)
            store.replace_artifacts(run_id, dest, files)
        self._forget_cached(run_id, dest)
        if use_cache:
            self.cache_run_artifact(run_id, dest)
        return files

    def _forget_cached(self, run_id: str, dest: str) -> None:
        """Drop the cached copy and cached listing of what a path held before a new log."""
        root = self.meta.run_artifacts_dir(run_id)
        _remove_tree(root / dest)
        parent = PurePosixPath(dest).parent
        while str(parent) not in ("", "."):  # a cached file where a folder now goes
            if (root / str(parent)).is_file():
                (root / str(parent)).unlink()
            parent = parent.parent
        cached = self.meta.run_files(run_id)
        if cached is not None:
            kept = [f for f in cached if not _under(f.path, dest) and not _under(dest, f.path)]
            self.meta.put_run_files(run_id, kept)

    def _prepared_source(
        self, source: Source, path_in_run: str | None, keep: bool | None
    ) -> _PreparedSource:
        return _PreparedSource(self, source, path_in_run, keep)

    def _upload(self, local: Path, dest: str) -> list[ArtifactFile]:
        """Upload a file or folder as blobs; return its files at their paths in the run."""
        from keel.hashing import hash_file

        if local.is_file():
            pairs = [(local, dest)]
        elif local.is_dir():
            pairs = [
                (
                    p,
                    str(PurePosixPath(dest) / p.relative_to(local).as_posix())
                    if dest
                    else p.relative_to(local).as_posix(),
                )
                for p in _folder_files(local)
            ]
        else:
            raise NotFound(f"artifact source {local} does not exist")
        for _path, rel in pairs:  # every name first: a refused one uploads nothing
            check_artifact_path(rel)
        files = []
        store = self.artifact_store
        with self._progress("uploading", [p.stat().st_size for p, _rel in pairs]) as advance:
            for path, rel in pairs:
                sha = hash_file(path)
                info = store.put_file(path, sha256=sha)
                files.append(ArtifactFile(rel, info.sha256, info.size))
                advance(info.size)
        return files

    def _progress(self, action: str, sizes: Sequence[int]) -> Any:
        """A progress bar on stderr over these file sizes (a no-op unless ``progress``)."""
        from keel.artifacts.progress import ProgressBar

        return ProgressBar(action, sizes, enabled=self.progress)

    def list_run_artifact(self, run: RunRef, path_in_run: str = "") -> list[ArtifactFile]:
        """The run's stored files under a path (all of them by default)."""
        return self._run_files(_run_id(run), path_in_run)

    def list_run_artifacts(self, run: RunRef, path_in_run: str = "") -> list[ArtifactFile]:
        """mlopus' name of :meth:`list_run_artifact`."""
        return self.list_run_artifact(run, path_in_run)

    def _run_files(self, run_id: str, path_in_run: str = "") -> list[ArtifactFile]:
        prefix = check_artifact_path(path_in_run, allow_empty=True)
        if self.offline:
            cached = self.meta.run_files(run_id)
            if cached is None:
                raise Offline(f"artifacts of run {run_id}: not in the offline cache")
            return _listed([f for f in cached if _under(f.path, prefix)], prefix, f"run {run_id}")
        files = self._online("list_run_artifact").list_artifacts("run", run_id, prefix)
        return _listed(files, prefix, f"run {run_id}")

    def cache_run_artifact(self, run: RunRef, path_in_run: str = "") -> Path:
        """Pull a run artifact into the local cache; returns its cached path."""
        run_id = _run_id(run)
        prefix = check_artifact_path(path_in_run, allow_empty=True)
        target = self.meta.run_artifacts_dir(run_id)
        if not self.offline and not self.always_pull_artifacts:
            hit = self._cache_hit(run_id, prefix, target)
            if hit is not None:
                return hit
        files = self._run_files(run_id, prefix)
        if not files:
            raise NotFound(f"run {run_id} has no artifact at {prefix or '/'!r}")
        if not self.offline:
            run_entity = self._online("cache_run_artifact").get_run(run_id)
            self.meta.put_run(run_entity)
            self.meta.put_experiment(self.store.get_experiment(run_entity.experiment_id))
            cached = {f.path: f for f in (self.meta.run_files(run_id) or [])}
            cached.update({f.path: f for f in files})
            self.meta.put_run_files(run_id, sorted(cached.values(), key=lambda f: f.path))
        entries = {f.path: f.sha256 for f in files}
        missing = [p for p in entries if not (target / p).is_file()]
        if self.offline and missing and not self.pull_artifacts_in_offline_mode:
            raise Offline(
                f"artifact {missing[0]!r} of run {run_id} is not in the offline cache: "
                "cache it online first, or set pull_artifacts_in_offline_mode"
            )
        if not self.offline or missing:
            _prune(target / prefix if prefix else target, entries, prefix)
            with self._progress("downloading", [f.size for f in files]) as advance:
                self.artifact_cache.materialize(
                    self.artifact_store,
                    entries,
                    target,
                    link=not self.cache_local_artifacts,
                    progress=advance,
                )
        return target / prefix if prefix else target

    def _cache_hit(self, run_id: str, prefix: str, target: Path) -> Path | None:
        """The cached copy of a run artifact when the cached listing has it complete."""
        cached = self.meta.run_files(run_id)
        files = [f for f in cached or [] if _under(f.path, prefix)]
        if not files:
            return None
        entries = {f.path: f.sha256 for f in files}
        sizes = {f.path: f.size for f in files}
        if not self.artifact_cache.tree_hash_ok(target, entries, sizes):
            return None
        return target / prefix if prefix else target

    def get_run_artifact(self, run: RunRef, path_in_run: str = "") -> Path:
        """The local (cached, write-protected) path of a run artifact."""
        return self.cache_run_artifact(run, path_in_run)

    def load_run_artifact(
        self, run: RunRef, loader: Callable[[Path], A], path_in_run: str = ""
    ) -> A:
        """``loader(path)`` on the cached artifact, e.g. ``loader=joblib.load``."""
        return loader(self.get_run_artifact(run, path_in_run))

    def place_run_artifact(
        self,
        run: RunRef,
        target: Path | str,
        path_in_run: str = "",
        overwrite: bool = False,
        link: bool = True,
    ) -> Path:
        """Put a run artifact at ``target``: with ``link=True`` each file is a symbolic link
        to its cached copy (in real folders: the tree can take more files), else a copy.
        Files are write-protected either way; folders are not."""
        place = check_local_target(target, "place target")
        source = self.get_run_artifact(run, path_in_run)
        return _place(source, place, overwrite, link)

    def export_run_artifact(self, run: RunRef, target: Path | str, path_in_run: str = "") -> Path:
        """Copy a cached run artifact and its metadata to ``target`` with the cache's layout,
        so that ``Client(cache_dir=target, offline=True)`` can serve it."""
        run_id = _run_id(run)
        target = self._export_target(target)
        self.cache_run_artifact(run_id, path_in_run)
        prefix = check_artifact_path(path_in_run, allow_empty=True)
        export = MetadataCache(target)
        run_entity = self.meta.run(run_id)
        assert run_entity is not None
        export.put_run(run_entity)
        exp = self.meta.experiment(run_entity.experiment_id)
        if exp is not None:
            export.put_experiment(exp)
        files = [f for f in (self.meta.run_files(run_id) or []) if _under(f.path, prefix)]
        previous = {f.path: f for f in (export.run_files(run_id) or [])}
        previous.update({f.path: f for f in files})
        export.put_run_files(run_id, sorted(previous.values(), key=lambda f: f.path))
        root = export.run_artifacts_dir(run_id)
        for f in files:
            src = self.meta.run_artifacts_dir(run_id) / f.path
            dst = root / f.path
            if not _stays_inside(dst.parent, target):
                raise ArtifactError(
                    f"cannot export {f.path!r} to {target}: a symbolic link in it leads out "
                    "of it; remove the link or export to a new folder"
                )
            _copy_protected(src, dst)
        return target

    # --- models --------------------------------------------------------------------------

    def _model_name(self, model: ModelRef) -> str:
        if isinstance(model, ModelApi):
            return model.name
        if isinstance(model, str):
            return model
        raise InvalidInput(f"expected a model name or handle, got {model!r}")

    def create_model(self, name: str, tags: Mapping[str, Any] | None = None) -> ModelApi:
        """Register a new model name (Conflict if it exists)."""
        return ModelApi(self, self._online("create_model").create_model(self.project, name, tags))

    def get_model(self, model: ModelRef) -> ModelApi:
        name = self._model_name(model)
        if self.offline:
            cached = self.meta.model(self.project, name)
            if cached is None:
                raise Offline(f"get_model({name!r}): not in the offline cache")
            return ModelApi(self, cached)
        try:
            entity = self._online("get_model").get_model(self.project, name)
        except NotFound as exc:
            raise self._not_in_project(exc, "model", name) from None
        self.meta.put_model(entity)
        return ModelApi(self, entity)

    def get_or_create_model(self, name: str) -> ModelApi:
        return ModelApi(
            self, self._online("get_or_create_model").get_or_create_model(self.project, name)
        )

    def find_models(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sorting: Sequence[tuple[str, int]] | None = None,
    ) -> list[ModelApi]:
        found = self._online("find_models").find_models(
            self.project, query, sort or sorting, limit, offset
        )
        return [ModelApi(self, m) for m in found]

    def set_tags_on_model(self, model: ModelRef, tags: Mapping[str, Any]) -> None:
        self._online("set_tags_on_model").set_model_tags(
            self.project, self._model_name(model), tags
        )

    def rename_model(self, model: ModelRef, new_name: str) -> ModelApi:
        """Give a registered model a new name; its versions, tags and aliases go with it
        (``Conflict`` if a model has that name)."""
        entity = self._online("rename_model").rename_model(
            self.project, self._model_name(model), new_name
        )
        self.meta.put_model(entity)
        return ModelApi(self, entity)

    def delete_model(self, model: ModelRef) -> None:
        """Delete a registered model with its versions, tags and aliases. The files stay
        their runs'; a model with a version that served invocations cannot be deleted
        (``Conflict``)."""
        self._online("delete_model").delete_model(self.project, self._model_name(model))

    def delete_model_version(self, model_version: VersionRef) -> None:
        """Delete a version, its tags and the aliases pointing at it; its number is not given
        again and its files stay its run's. A version that served invocations cannot be
        deleted (``Conflict``)."""
        mv = self.get_model_version(model_version)
        self._online("delete_model_version").delete_model_version(
            self.project, mv.model, mv.version
        )

    def log_model_version(
        self,
        model: ModelRef,
        run: RunRef,
        source: Source,
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
        version: int | None = None,
        tags: Mapping[str, Any] | None = None,
        label: str | None = None,
        description: str = "",
    ) -> ModelVersionApi:
        """Publish a file or folder as the run's artifact and register it as the next version.

        The version number is the model's next integer. If a version of this model already
        has identical content, that version is returned and nothing is uploaded, unless
        ``allow_duplication=True``.

        A version's files never change. Without ``path_in_run``, the files go to the model's
        name in the run, or, when a version registered from this run already holds that
        path, to ``<first 16 characters of the content hash>/<model name>``. A
        ``path_in_run`` holding another version's files is a :class:`~keel.errors.Conflict`.
        The version becomes visible only once all its files are stored and recorded: a
        process killed midway leaves no version, only blobs ``keel gc`` removes.
        """
        if version is not None:
            raise InvalidInput("versions are numbered by keel; use label= for your own name")
        name = self._model_name(model)
        run_id = _run_id(run)
        store = self._online("log_model_version")
        dest_default = path_in_run or name
        with self._prepared_source(source, dest_default, keep_the_source) as (local, dest):
            content_hash = _content_hash(local)
            if not allow_duplication:
                existing = store.find_model_versions(
                    self.project,
                    {"model.name": name, "content_hash": content_hash},
                    [("version", 1)],
                    1,
                )
                if existing:
                    return ModelVersionApi(self, existing[0])
            if path_in_run is None:
                dest = self._unclaimed_path(store, run_id, dest, content_hash)
            files = self._upload(local, dest)
        mv, _created = store.register_model_version(
            self.project,
            name,
            files=files,
            run_id=run_id,
            path_in_run=dest,
            content_hash=content_hash,
            label=label,
            description=description,
            tags=tags,
            library_versions=installed_distributions(),
            author=current_author(),
            allow_duplication=bool(allow_duplication),
        )
        if use_cache:
            self.cache_run_artifact(run_id, dest)
        return ModelVersionApi(self, mv)

    @staticmethod
    def _unclaimed_path(store: MetadataStore, run_id: str, dest: str, content_hash: str) -> str:
        """``dest``, unless a version registered from the run holds other files at, inside
        or around it: then a sibling path named by the content hash (same file name, so
        loaders that look at the suffix still work)."""
        claims = store.find_model_versions(None, {"run_id": run_id})
        if all(
            (mv.path_in_run == dest and mv.content_hash == content_hash)
            or not (_under(mv.path_in_run, dest) or _under(dest, mv.path_in_run))
            for mv in claims
        ):
            return dest
        return str(PurePosixPath(content_hash[:16]) / dest)

    def _version_ref(self, model_version: VersionRef) -> tuple[str, int | str]:
        if isinstance(model_version, ModelVersionApi):
            return model_version.model, model_version.version
        if isinstance(model_version, tuple) and len(model_version) == 2:
            return str(model_version[0]), model_version[1]
        if isinstance(model_version, str):
            name, _, ref = model_version.partition("@")
            return name, ref or "latest"
        raise InvalidInput(
            f"expected a model version handle, (name, version) or 'name@ref', got {model_version!r}"
        )

    def get_model_version(self, model_version: VersionRef) -> ModelVersionApi:
        """A version by ``(name, version)``, ``"name@3"``, ``"name@production"`` (alias),
        ``"name@1.2.0"`` (label) or ``"name"`` / ``"name@latest"`` (newest)."""
        name, ref = self._version_ref(model_version)
        if self.offline:
            return ModelVersionApi(self, self._cached_version(name, ref))
        try:
            mv = self._online("get_model_version").get_model_version(self.project, name, ref)
        except NotFound as exc:
            raise self._not_in_project(exc, "model", name) from None
        self.meta.put_version(self.project, mv)
        self.meta.put_model(self.store.get_model(self.project, name))
        return ModelVersionApi(self, mv)

    def _cached_version(self, name: str, ref: int | str) -> Any:
        text = str(ref).lstrip("@")
        versions = self.meta.versions(self.project, name)
        model = self.meta.model(self.project, name)
        found = None
        if text.isdigit():
            found = next((v for v in versions if v.version == int(text)), None)
        elif text == "latest":
            number = model.latest_version if model else None
            found = next((v for v in versions if v.version == number), None)
        else:
            number = (model.aliases if model else {}).get(text)
            if number is not None:
                found = next((v for v in versions if v.version == number), None)
            else:
                labelled = [v for v in versions if v.label == text]
                found = labelled[-1] if labelled else None
        if found is None:
            raise Offline(f"get_model_version({name}@{text}): not in the offline cache")
        return found

    def find_model_versions(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sorting: Sequence[tuple[str, int]] | None = None,
    ) -> list[ModelVersionApi]:
        """Versions matching a query over their attributes, ``tags.*``, ``model.*``,
        ``run.*`` and ``metrics.*`` (of the source run)."""
        found = self._online("find_model_versions").find_model_versions(
            self.project, query, sort or sorting, limit, offset
        )
        return [ModelVersionApi(self, v) for v in found]

    def set_tags_on_model_version(self, model_version: VersionRef, tags: Mapping[str, Any]) -> None:
        mv = self.get_model_version(model_version)
        self._online("set_tags_on_model_version").set_model_version_tags(mv.id, tags)

    def update_model_version_metrics(
        self, model_version: VersionRef, metrics: Mapping[str, float]
    ) -> ModelVersionApi:
        """Merge newer metric values (from a retest) into a version's metrics."""
        mv = self.get_model_version(model_version)
        updated = self._online("update_model_version_metrics").update_model_version_metrics(
            mv.id, metrics
        )
        self.meta.put_version(self.project, updated)
        return ModelVersionApi(self, updated)

    def set_alias(self, model_version: VersionRef, alias: str) -> None:
        """Point ``alias`` at a version (moving it from another version if needed)."""
        name, ref = self._version_ref(model_version)
        mv = self._online("set_alias").get_model_version(self.project, name, ref)
        self.store.set_alias(self.project, name, alias, mv.version)

    def delete_alias(self, model: ModelRef, alias: str) -> None:
        self._online("delete_alias").delete_alias(self.project, self._model_name(model), alias)

    def list_model_artifact(self, model_version: VersionRef) -> list[ArtifactFile]:
        mv = self.get_model_version(model_version)
        if mv.run_id is None:
            raise _no_files(mv)
        return self._run_files(mv.run_id, mv.path_in_run)

    def cache_model_artifact(self, model_version: VersionRef) -> Path:
        """Pull a model version's artifact into the cache and check its content hash."""
        mv = self.get_model_version(model_version)
        if mv.run_id is None:
            raise _no_files(mv)
        path = self.cache_run_artifact(mv.run_id, mv.path_in_run)
        files = self._run_files(mv.run_id, mv.path_in_run)
        from keel.errors import IntegrityError

        _verify_files(path, files, mv.path_in_run, f"model {mv.model} version {mv.version}")
        if _files_hash(files, mv.path_in_run) != mv.content_hash:
            raise IntegrityError(
                f"the artifact of model {mv.model} version {mv.version} no longer matches its "
                f"registered content hash {mv.content_hash[:12]}…: it was changed after "
                "registration; register it again"
            )
        return path

    def get_model_artifact(self, model_version: VersionRef) -> Path:
        """The local (cached, write-protected) path of a model version's artifact."""
        return self.cache_model_artifact(model_version)

    def load_model_artifact(self, model_version: VersionRef, loader: Callable[[Path], A]) -> A:
        return loader(self.get_model_artifact(model_version))

    def place_model_artifact(
        self,
        model_version: VersionRef,
        target: Path | str,
        overwrite: bool = False,
        link: bool = True,
    ) -> Path:
        place = check_local_target(target, "place target")
        return _place(self.get_model_artifact(model_version), place, overwrite, link)

    def export_model_artifact(self, model_version: VersionRef, target: Path | str) -> Path:
        """Export a version's artifact and metadata with the cache's layout (for offline use)."""
        target = self._export_target(target)
        mv = self.get_model_version(model_version)
        self.cache_model_artifact(mv)
        assert mv.run_id is not None
        self.export_run_artifact(mv.run_id, target, mv.path_in_run)
        export = MetadataCache(Path(target))
        export.put_version(self.project, mv.entity)
        model = self.meta.model(self.project, mv.model)
        if model is not None:
            export.put_model(model)
        return Path(target)

    # --- datasets ------------------------------------------------------------------------

    # --- a version's own files (invocation batches, monitoring profiles) ------------------

    def put_version_file(self, model_version: VersionRef, path: str, data: bytes) -> ArtifactFile:
        """Store ``data`` as the version's file ``path`` (replacing what was there). These
        are the files keel keeps about a version (``predictions/``, ``monitoring/``), not its
        model artifact, whose files and content hash never change."""
        mv = (
            model_version
            if isinstance(model_version, ModelVersionApi)
            else self.get_model_version(model_version)
        )
        store = self._online("put_version_file")
        blob = self.artifact_store.put_bytes(data)
        stored = ArtifactFile(path, blob.sha256, blob.size)
        store.record_artifacts("model_version", mv.id, [stored])
        return stored

    def list_version_files(self, model_version: VersionRef, prefix: str = "") -> list[ArtifactFile]:
        """The version's own files at or under ``prefix`` (see :meth:`put_version_file`)."""
        mv = (
            model_version
            if isinstance(model_version, ModelVersionApi)
            else self.get_model_version(model_version)
        )
        return self._online("list_version_files").list_artifacts("model_version", mv.id, prefix)

    def read_file_bytes(self, file: ArtifactFile) -> bytes:
        """The content of a stored file (by its content hash)."""
        with self.artifact_store.open(file.sha256) as fh:
            return fh.read()

    # --- invocation records -------------------------------------------------------------

    def log_invocations(
        self, model_version: VersionRef, records: Sequence[InvocationRecord]
    ) -> ArtifactFile:
        """Store a batch of invocation records: one JSON-lines file under
        ``predictions/<model>/<version>/`` in the artifact store, indexed per record."""
        import json

        from keel.entities import InvocationIndex

        if not records:
            raise InvalidInput("log_invocations: no records given")
        # A handle is used as is: the recorder resolves its version once, not per batch.
        mv = (
            model_version
            if isinstance(model_version, ModelVersionApi)
            else self.get_model_version(model_version)
        )
        encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
        lines = [
            encode(
                {
                    "request_id": r.request_id,
                    "timestamp": r.timestamp,
                    "latency_ms": r.latency_ms,
                    "status": r.status,
                    "resource": r.resource,
                    "input": r.input,
                    "result": r.result,
                }
            )
            for r in records
        ]
        data = ("\n".join(lines) + "\n").encode()
        self._online("log_invocations")
        blob = self.artifact_store.put_bytes(data)
        first = min(records, key=lambda r: r.timestamp)
        path = f"predictions/{mv.model}/{mv.version}/{first.request_id}.jsonl"
        batch = ArtifactFile(path, blob.sha256, blob.size)
        rows = [
            InvocationIndex(r.request_id, r.timestamp, r.latency_ms, r.status, blob.sha256, i)
            for i, r in enumerate(records)
        ]
        self.store.record_invocations(mv.id, batch, rows)
        return batch

    def find_invocations(
        self,
        model_version: VersionRef,
        since: int | float | None = None,
        until: int | float | None = None,
        limit: int | None = 100,
    ) -> list[InvocationRecord]:
        """A version's invocation records, newest first.

        ``since``/``until`` are ms since the epoch (UTC), both inclusive.
        """
        import json

        from keel.entities import InvocationRecord

        mv = self.get_model_version(model_version)
        index = self._online("find_invocations").find_invocations(
            mv.id,
            None if since is None else int(since),
            None if until is None else int(until),
            limit,
        )
        batches: dict[str, list[bytes]] = {}
        found = []
        for row in index:
            if row.batch_sha256 not in batches:
                with self.artifact_store.open(row.batch_sha256) as fh:
                    batches[row.batch_sha256] = fh.read().splitlines()
            data = json.loads(batches[row.batch_sha256][row.batch_offset])
            found.append(
                InvocationRecord(
                    request_id=row.request_id,
                    model=mv.model,
                    version=mv.version,
                    timestamp=row.timestamp,
                    latency_ms=row.latency_ms,
                    status=row.status,
                    resource=data.get("resource", ""),
                    input=data.get("input"),
                    result=data.get("result"),
                )
            )
        return found

    def log_dataset(
        self,
        name: str,
        source: Source,
        run: RunRef | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_duplication: bool = False,
    ) -> DatasetApi:
        """Register a file or folder as the next version of a dataset.

        Identical content returns the existing version (and links it to ``run``).
        """
        from keel.store.validation import check_name

        check_name(name, "dataset")
        store = self._online("log_dataset")
        with self._prepared_source(source, PurePosixPath(name).name, None) as (local, _dest):
            files = self._upload(local, "" if local.is_dir() else local.name)
            content_hash = _content_hash(local)
            dataset, _created = store.create_dataset(
                self.project,
                name,
                content_hash=content_hash,
                files=files,
                run_id=None if run is None else _run_id(run),
                description=description,
                tags=tags,
                author=current_author(),
                allow_duplication=allow_duplication,
            )
        return DatasetApi(self, dataset)

    def get_dataset(self, name: str, version: int | str = "latest") -> DatasetApi:
        try:
            found = self._online("get_dataset").get_dataset(self.project, name, version)
        except NotFound as exc:
            raise self._not_in_project(exc, "dataset", name) from None
        return DatasetApi(self, found)

    def find_datasets(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DatasetApi]:
        found = self._online("find_datasets").find_datasets(
            self.project, query, sort, limit, offset
        )
        return [DatasetApi(self, d) for d in found]

    def list_dataset_files(self, dataset: DatasetApi | Dataset) -> list[ArtifactFile]:
        files = self._online("list_dataset_files").list_artifacts("dataset", dataset.id)
        return _listed(files, "", f"dataset {dataset.name} version {dataset.version}")

    def get_dataset_files(self, dataset: DatasetApi | Dataset) -> Path:
        files = self.list_dataset_files(dataset)
        target = self.settings.cache_dir / "datasets" / check_path_segment(dataset.id, "dataset id")
        self.artifact_cache.materialize(
            self.artifact_store, {f.path: f.sha256 for f in files}, target
        )
        return target

    def link_dataset(self, dataset: DatasetApi | Dataset, run: RunRef, role: str = "input") -> None:
        self._online("link_dataset").link_dataset(dataset.id, _run_id(run), role)

    def dataset_lineage(self, dataset: DatasetApi | Dataset) -> list[tuple[str, str]]:
        return self._online("dataset_lineage").dataset_runs(dataset.id)


# --- helpers ------------------------------------------------------------------------------


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics (``{"ns": {"acc": 0.9}}``, as mlopus logs them) as flat dotted keys
    (``ns.acc``): metrics stay numbers with a history, queried as ``metrics.ns.acc``."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update(_flat_metrics(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _run_id(run: RunRef) -> str:
    if isinstance(run, RunApi | Run):
        return run.id
    if isinstance(run, str):
        return run
    raise InvalidInput(f"expected a run, its id or its handle, got {run!r}")


def check_artifact_path(path: str, allow_empty: bool = False) -> str:
    """A safe relative POSIX path inside a run: no ``..``, no absolute paths, no NUL, no
    backslashes, no look-alike or invisible Unicode (the rules of :mod:`keel.paths`).

    With ``allow_empty`` (a prefix to list or fetch), ``""`` and ``"/"`` mean the whole
    run and a trailing ``/`` is dropped; a leading ``/`` is still an absolute path.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"artifact path must be a string, got {path!r}")
    cleaned = path
    if allow_empty:
        cleaned = "" if path.strip("/") == "" else path.rstrip("/")
    if not cleaned:
        if allow_empty:
            return ""
        raise InvalidInput("artifact path is empty: give path_in_run")
    return check_relative_path(cleaned, "artifact path")


def _folder_files(folder: Path) -> list[Path]:
    """The files of a folder artifact, as :func:`keel.hashing.hash_folder` sees them.

    A symbolic link to a file inside the folder is stored as that file's content; a link
    that leads outside the folder (to a file or a folder) is refused, so logging a folder
    never carries files from elsewhere on the machine into the store. Links to folders
    inside are not descended and broken links are skipped, as ``hash_folder`` does.
    """
    real_root = folder.resolve()
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            target = path.resolve()
            if target.exists() and not target.is_relative_to(real_root):
                rel = path.relative_to(folder).as_posix()
                raise InvalidInput(
                    f"artifact folder {folder} holds {rel!r}, a symbolic link to {target} "
                    "outside the folder: keel stores only what is inside it; copy that file "
                    "in, or log it on its own"
                )
        if path.is_file():
            files.append(path)
    return files


def _listed(files: list[ArtifactFile], prefix: str, owner: str) -> list[ArtifactFile]:
    """The files a store listed, refused whole if one path is unsafe or outside ``prefix``:
    they are joined under local folders (the cache, an export), so a store that lists
    ``../../x`` (a hostile server, a tampered offline cache) must not write outside them."""
    for f in files:
        try:
            check_artifact_path(f.path)
        except InvalidInput as exc:
            raise InvalidInput(f"the store listed an unsafe file for {owner}: {exc}") from None
        if not _under(f.path, prefix):
            raise InvalidInput(
                f"the store listed {f.path!r} for {owner}, which is not under {prefix!r}"
            )
    return files


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _no_files(mv: Any) -> NotFound:
    """The one-line error of a version whose files keel does not hold (registered through
    MLflow's API from a source elsewhere, kept in :data:`~keel.entities.EXTERNAL_SOURCE_TAG`)."""
    from keel.entities import EXTERNAL_SOURCE_TAG

    source = mv.tags.get(EXTERNAL_SOURCE_TAG)
    if source:
        return NotFound(
            f"model {mv.model} version {mv.version} has no files in keel: it was registered "
            f"through MLflow's API from {source!r}, which keel does not hold"
        )
    return NotFound(f"model {mv.model} version {mv.version} has no source run")


def _content_hash(local: Path) -> str:
    from keel.hashing import hash_path

    return hash_path(local)


def _files_hash(files: Sequence[ArtifactFile], prefix: str) -> str:
    """The content hash of stored files, equal to ``hash_path`` of the original source."""
    from keel.hashing import hash_tree

    if len(files) == 1 and files[0].path == prefix:
        return files[0].sha256
    return hash_tree({f.path[len(prefix) + 1 :] if prefix else f.path: f.sha256 for f in files})


def _verify_files(local: Path, files: Sequence[ArtifactFile], prefix: str, what: str) -> None:
    """Hash the local copies: a blob changed in the store (or the cache) is refused."""
    from keel.errors import IntegrityError
    from keel.hashing import hash_file

    for f in files:
        rel = f.path[len(prefix) :].lstrip("/") if prefix else f.path
        path = local / rel if rel else local
        if hash_file(path) != f.sha256:
            raise IntegrityError(
                f"the artifact of {what} was changed after registration: {f.path} no longer "
                f"has sha256 {f.sha256[:12]}…; do not load it, register the model again"
            )


def _stays_inside(folder: Path, root: Path) -> bool:
    """Whether ``folder`` (made if missing) is inside ``root`` once symbolic links are
    followed; checked on the part that exists before anything is made."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.resolve().is_relative_to(root.resolve()):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().is_relative_to(root.resolve())


def _remove_tree(path: Path) -> None:
    """Remove a file or folder of the cache if there (read-only files sit in writable
    folders, so they can be unlinked)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _prune(local: Path, entries: Mapping[str, str], prefix: str) -> None:
    """Remove cached files under ``local`` (the cached copy of ``prefix``) that the run no
    longer lists: what an artifact held before it was logged again."""
    if local.is_file() and not local.is_symlink():
        if prefix not in entries:
            local.unlink()
        return
    if not local.is_dir():
        return
    for path in sorted(local.rglob("*"), reverse=True):
        rel = path.relative_to(local).as_posix()
        key = f"{prefix}/{rel}" if prefix else rel
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif key not in entries and not path.name.endswith(".part"):
            path.unlink()
    if prefix in entries and not any(local.iterdir()):
        local.rmdir()  # a folder replaced by a file of the same name


def _copy_protected(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.part")
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o444)
    os.replace(tmp, dst)


def _place(source: Path, target: Path, overwrite: bool, link: bool) -> Path:
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise Conflict(f"{target} already exists: pass overwrite=True to replace it")
        if target.is_dir() and not target.is_symlink():
            for p in target.rglob("*"):
                if p.is_file():
                    p.chmod(0o644)
            shutil.rmtree(target)
        else:
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if link and source.is_dir():
        target.mkdir()
        for p in sorted(source.rglob("*")):
            if p.is_file():
                dst = target / p.relative_to(source)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(p.resolve())
    elif link:
        target.symlink_to(source.resolve())
    elif source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file():
                _copy_protected(p, target / p.relative_to(source))
    else:
        _copy_protected(source, target)
    return target


class _PreparedSource:
    """A context giving (local path, path in run) for a path or a dumper callback.

    A callback writes into a temporary folder in the cache; it is removed after a successful
    upload (unless kept) and kept, with its location in the error, after a failed one.
    """

    def __init__(
        self, client: Client, source: Source, path_in_run: str | None, keep: bool | None
    ) -> None:
        self._client = client
        self._source = source
        self._path_in_run = path_in_run
        self._keep = keep
        self._tmp: Path | None = None

    def __enter__(self) -> tuple[Path, str]:
        if callable(self._source):
            if not self._path_in_run:
                raise InvalidInput("a dumper callback needs path_in_run (where to store it)")
            dest = check_artifact_path(self._path_in_run)
            base = self._client.temp_artifacts_dir
            base.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix="artifact-", dir=base))
            local = self._tmp / PurePosixPath(dest).name
            self._source(local)
            if not local.exists():
                raise ArtifactError(
                    f"the dumper callback wrote nothing at {local}: it must create that file "
                    "or folder"
                )
            return local, dest
        local = Path(self._source)
        if not local.exists():
            raise NotFound(f"artifact source {local} does not exist")
        dest = check_artifact_path(self._path_in_run or local.name)
        return local, dest

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._tmp is None:
            return
        if exc is not None and not isinstance(exc, InvalidInput | Conflict):
            raise ArtifactError(
                f"storing the artifact failed ({exc}); the dumped files are kept at {self._tmp}"
            ) from exc
        if not self._keep:
            shutil.rmtree(self._tmp, ignore_errors=True)
