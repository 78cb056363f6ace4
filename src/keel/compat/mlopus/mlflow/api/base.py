"""``mlopus.mlflow.api.base``: :class:`BaseMlflowApi`, mlopus' MLflow API over keel.

Every public verb of mlopus' API is here under its name and signature; each calls the
:class:`keel.Client` built from the settings and turns keel's handles into mlopus' entity
handles (``run.exp``, ``mv.model``, ``mv.run``, string versions, ``RunStatus``). What
differs from mlopus is said where it happens:

- an artifact missing from the cache of an offline API is a ``FileNotFoundError``
  (keel's :class:`~keel.errors.Offline` too);
- ``repo=`` (a per-run artifact repository) and ``version=`` (a chosen version number) are
  refused, as keel numbers versions and keeps one artifact store;
- ``list_run_artifacts`` lists one level, as rclone's ``lsjson`` does; ``ModTime`` is the
  run's start (keel records no per-file time).
"""

from __future__ import annotations

import mimetypes
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from keel.compat.mlopus.mlflow.api.common import exceptions, schema, transfer
from keel.compat.mlopus.mlflow.api.exp import ExpApi
from keel.compat.mlopus.mlflow.api.model import ModelApi
from keel.compat.mlopus.mlflow.api.mv import ModelVersionApi
from keel.compat.mlopus.mlflow.api.run import RunApi
from keel.errors import InvalidInput, Offline

if TYPE_CHECKING:
    from keel.tracking.client import Client

A = TypeVar("A")

_STATUS = {
    "scheduled": schema.RunStatus.SCHEDULED,
    "running": schema.RunStatus.RUNNING,
    "finished": schema.RunStatus.FINISHED,
    "failed": schema.RunStatus.FAILED,
    "killed": schema.RunStatus.KILLED,
}


class NotCached(Offline, FileNotFoundError):
    """Offline, and the metadata or artifact is not in the cache."""


class BaseMlflowApi(BaseModel):
    """mlopus' MLflow API over keel's tracking client (settings as in mlopus)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    cache_dir: Path | None = Field(default=None, description="Cached artifacts and metadata.")
    offline_mode: bool = Field(default=False, description="Use only cached metadata.")
    pull_artifacts_in_offline_mode: bool = Field(default=False)
    temp_artifacts_dir: Path | None = Field(default=None)
    cache_local_artifacts: bool = Field(default=False)
    always_pull_artifacts: bool = Field(default=False)
    file_transfer: transfer.FileTransfer = Field(default_factory=transfer.FileTransfer)

    _client: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        from keel.tracking.settings import resolve_settings

        if self.cache_dir is None or str(self.cache_dir) in ("", "."):
            settings = resolve_settings(self._store_url(), cache_dir=None)
            object.__setattr__(self, "cache_dir", settings.cache_dir)
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser().resolve())  # type: ignore[arg-type]
        tmp = self.temp_artifacts_dir
        if tmp is None or str(tmp) in ("", "."):
            tmp = self.cache_dir / "tmp"
        object.__setattr__(self, "temp_artifacts_dir", Path(tmp).expanduser().resolve())

    # --- the keel client ------------------------------------------------------------------

    def _store_url(self) -> str | None:
        return None

    def _client_options(self) -> dict[str, Any]:
        return {}

    @property
    def client(self) -> Client:
        """The :class:`keel.Client` doing the work (built on first use)."""
        if self._client is None:
            from keel.tracking.client import Client

            self._client = Client(
                store=self._store_url(),
                cache_dir=self.cache_dir,
                offline=self.offline_mode,
                always_pull_artifacts=self.always_pull_artifacts,
                pull_artifacts_in_offline_mode=self.pull_artifacts_in_offline_mode,
                cache_local_artifacts=self.cache_local_artifacts,
                temp_artifacts_dir=self.temp_artifacts_dir,
                progress=self.file_transfer.prog_bar,
                **self._client_options(),
            )
        return self._client

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy with some settings changed (and its own keel client)."""
        if self._client is not None:
            self._client.flush()
        data = {**self.model_dump(exclude_unset=False), **(update or {})}
        data["file_transfer"] = (update or {}).get("file_transfer", self.file_transfer)
        if "cache_dir" in (update or {}) and "temp_artifacts_dir" not in (update or {}):
            data["temp_artifacts_dir"] = None  # follows the new cache
        return type(self).model_validate(data)

    def copy(self, *, update: Mapping[str, Any] | None = None, **_: Any) -> Any:  # type: ignore[override]
        """mlopus' (pydantic v1) name of :meth:`model_copy`."""
        return self.model_copy(update=update)

    @property
    def in_offline_mode(self) -> Any:
        """An offline copy of this API: it reads only the cache."""
        return self.model_copy(update={"offline_mode": True})

    # --- keel entities → mlopus entity handles ---------------------------------------------

    def _exp(self, handle: Any) -> ExpApi:
        e = handle.entity
        return ExpApi(id=e.id, name=e.name, tags=dict(e.tags)).using(self)  # type: ignore[return-value]

    def _run(self, handle: Any) -> RunApi:
        r = handle.entity
        with _not_cached():
            exp = self._exp(self.client.get_exp(r.experiment_id))
        return RunApi(  # type: ignore[return-value]
            id=r.id,
            name=r.name,
            exp=exp,
            repo=self.client.settings.artifacts,
            params=dict(r.params),
            metrics=_nested(r.metrics),
            tags=dict(r.tags),
            status=_STATUS.get(r.status),
            start_time=_time(r.start_time),
            end_time=_time(r.end_time),
        ).using(self)

    def _model(self, handle: Any) -> ModelApi:
        m = handle.entity
        return ModelApi(name=m.name, tags=dict(m.tags)).using(self)  # type: ignore[return-value]

    def _mv(self, handle: Any) -> ModelVersionApi:
        v = handle.entity
        with _not_cached():
            model = self._model(self.client.get_model(v.model))
            run = self._run(self.client.get_run(v.run_id))
        return ModelVersionApi(  # type: ignore[return-value]
            version=str(v.version),
            model=model,
            run=run,
            path_in_run=v.path_in_run,
            tags=dict(v.tags),
        ).using(self)

    # --- identifiers -----------------------------------------------------------------------

    @staticmethod
    def _exp_id(exp: Any) -> str:
        return exp.id if isinstance(exp, schema.Experiment) else _string(exp, "experiment")

    @staticmethod
    def _run_id(run: Any) -> str:
        return run.id if isinstance(run, schema.Run) else _string(run, "run")

    @staticmethod
    def _model_name(model: Any) -> str:
        return model.name if isinstance(model, schema.Model) else _string(model, "model")

    @staticmethod
    def _mv_ref(mv: Any) -> tuple[str, int | str]:
        if isinstance(mv, schema.ModelVersion):
            return mv.model.name, int(mv.version)
        if isinstance(mv, tuple) and len(mv) == 2:
            name, version = mv
            return _string(name, "model"), int(version) if str(version).isdigit() else version
        raise InvalidInput(
            f"expected a model version or a (name, version) tuple, got {mv!r}: "
            "pass ('my_model', '3')"
        )

    # --- URLs ------------------------------------------------------------------------------

    def get_exp_url(self, exp: Any) -> str:
        return self.client.get_exp_url(self._exp_id(exp))

    def get_run_url(self, run: Any, exp: Any = None) -> str:
        exp_id = None if exp is None else self._exp_id(exp)
        if exp_id is None and isinstance(run, schema.Run):
            exp_id = run.exp.id
        return self.client.get_run_url(self._run_id(run), exp_id)

    def get_model_url(self, model: Any) -> str:
        return self.client.get_model_url(self._model_name(model))

    def get_model_version_url(self, model_version: Any) -> str:
        return self.client.get_model_version_url(self._mv_ref(model_version))

    # --- getters and finders ---------------------------------------------------------------

    def get_exp(self, exp: Any, force_cache_refresh: bool = False) -> ExpApi:
        if force_cache_refresh:
            return self.cache_exp_meta(exp)
        with _not_cached():
            return self._exp(self.client.get_exp(self._exp_id(exp)))

    def get_run(self, run: Any, force_cache_refresh: bool = False) -> RunApi:
        if force_cache_refresh:
            return self.cache_run_meta(run)
        with _not_cached():
            return self._run(self.client.get_run(self._run_id(run)))

    def get_model(self, model: Any, force_cache_refresh: bool = False) -> ModelApi:
        if force_cache_refresh:
            return self.cache_model_meta(model)
        with _not_cached():
            return self._model(self.client.get_model(self._model_name(model)))

    def get_model_version(
        self, model_version: Any, force_cache_refresh: bool = False
    ) -> ModelVersionApi:
        if force_cache_refresh:
            return self.cache_model_version_meta(model_version)
        with _not_cached():
            return self._mv(self.client.get_model_version(self._mv_ref(model_version)))

    def find_exps(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[ExpApi]:
        return (self._exp(e) for e in self.client.find_exps(query or {}, sorting=_sorting(sorting)))

    def find_runs(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[RunApi]:
        return (
            self._run(r) for r in self.client.find_runs(_query(query), sorting=_sorting(sorting))
        )

    def find_models(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[ModelApi]:
        found = self.client.find_models(query or {}, sorting=_sorting(sorting))
        return (self._model(m) for m in found)

    def find_model_versions(
        self, query: Mapping[str, Any] | None = None, sorting: Any = None
    ) -> Iterator[ModelVersionApi]:
        found = self.client.find_model_versions(_query(query), sorting=_sorting(sorting))
        return (self._mv(v) for v in found)

    def find_child_runs(self, parent: Any) -> Iterator[RunApi]:
        return (self._run(r) for r in self.client.find_child_runs(self._run_id(parent)))

    # --- metadata cache --------------------------------------------------------------------

    def cache_exp_meta(self, exp: Any) -> ExpApi:
        return self._exp(self.client.cache_exp_meta(self._exp_id(exp)))

    def cache_run_meta(self, run: Any) -> RunApi:
        return self._run(self.client.cache_run_meta(self._run_id(run)))

    def cache_model_meta(self, model: Any) -> ModelApi:
        return self._model(self.client.cache_model_meta(self._model_name(model)))

    def cache_model_version_meta(self, model_version: Any) -> ModelVersionApi:
        handle = self.client.cache_model_version_meta(self._mv_ref(model_version))
        self.client.cache_run_meta(handle.run_id)
        return self._mv(handle)

    def export_exp_meta(self, exp: Any, target: Path) -> ExpApi:
        return self._exp(self.client.export_exp_meta(self._exp_id(exp), target))

    def export_run_meta(self, run: Any, target: Path) -> RunApi:
        return self._run(self.client.export_run_meta(self._run_id(run), target))

    def export_model_meta(self, model: Any, target: Path) -> ModelApi:
        return self._model(self.client.export_model_meta(self._model_name(model), target))

    def export_model_version_meta(self, mv: Any, target: Path) -> ModelVersionApi:
        handle = self.client.export_model_version_meta(self._mv_ref(mv), target)
        self.client.export_run_meta(handle.run_id, target)
        return self._mv(handle)

    # --- cleaning the cache ----------------------------------------------------------------

    def clean_all_cache(self) -> None:
        self.client.clean_all_cache()

    def clean_temp_artifacts(self) -> None:
        self.client.clean_temp_artifacts()

    def clean_cached_run_artifact(self, run: Any, path_in_run: str = "") -> None:
        self.client.clean_cached_run_artifact(self._run_id(run), _path(path_in_run))

    def clean_cached_model_artifact(self, model_version: Any) -> None:
        mv = self._coerce_mv(model_version)
        self.clean_cached_run_artifact(mv.run, mv.path_in_run)

    def _coerce_mv(self, model_version: Any) -> ModelVersionApi:
        if isinstance(model_version, ModelVersionApi):
            return model_version
        return self.get_model_version(model_version)

    # --- experiments, runs, models ---------------------------------------------------------

    def create_exp(self, name: str, tags: Mapping[str, Any] | None = None) -> ExpApi:
        return self._exp(self.client.create_exp(name, tags or {}))

    def get_or_create_exp(self, name: str) -> ExpApi:
        return self._exp(self.client.get_or_create_exp(name))

    def create_model(self, name: str, tags: Mapping[str, Any] | None = None) -> ModelApi:
        return self._model(self.client.create_model(name, tags or {}))

    def get_or_create_model(self, name: str) -> ModelApi:
        return self._model(self.client.get_or_create_model(name))

    def create_run(
        self,
        exp: Any,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: Any = None,
    ) -> RunApi:
        return self._new_run(self.client.create_run, exp, name, tags, repo, parent)

    def start_run(
        self,
        exp: Any,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | None = None,
        parent: Any = None,
    ) -> RunApi:
        return self._new_run(self.client.start_run, exp, name, tags, repo, parent)

    def _new_run(
        self,
        make: Any,
        exp: Any,
        name: str | None,
        tags: Mapping[str, Any] | None,
        repo: str | None,
        parent: Any,
    ) -> RunApi:
        parent_id = None if parent is None else self._run_id(parent)
        return self._run(make(self._exp_id(exp), name, tags or {}, repo, parent_id))

    def resume_run(self, run: Any) -> RunApi:
        return self._run(self.client.resume_run(self._run_id(run)))

    def end_run(self, run: Any, succeeded: bool = True) -> RunApi:
        status = "finished" if succeeded else "failed"
        return self._run(self.client.end_run(self._run_id(run), status))

    def set_tags_on_exp(self, exp: Any, tags: Mapping[str, Any]) -> None:
        self.client.set_tags_on_exp(self._exp_id(exp), tags)

    def set_tags_on_run(self, run: Any, tags: Mapping[str, Any]) -> None:
        self.client.set_tags_on_run(self._run_id(run), tags)

    def set_tags_on_model(self, model: Any, tags: Mapping[str, Any]) -> None:
        self.client.set_tags_on_model(self._model_name(model), tags)

    def set_tags_on_model_version(self, model_version: Any, tags: Mapping[str, Any]) -> None:
        self.client.set_tags_on_model_version(self._mv_ref(model_version), tags)

    def log_params(self, run: Any, params: Mapping[str, Any]) -> None:
        self.client.log_params(self._run_id(run), params)

    def log_metrics(self, run: Any, metrics: Mapping[str, Any]) -> None:
        self.client.log_metrics(self._run_id(run), metrics)
        self.client.flush(self._run_id(run))

    # --- artifacts -------------------------------------------------------------------------

    def list_run_artifacts(self, run: Any, path_in_run: str = "") -> transfer.LsResult:
        run_id, prefix = self._run_id(run), _path(path_in_run)
        with _not_cached():
            files = self.client.list_run_artifacts(run_id, prefix)
        when = (
            _time(self.client.meta.run(run_id).start_time) if self.client.meta.run(run_id) else None
        )
        return _ls(files, prefix, when or datetime.fromtimestamp(0))

    def list_model_artifact(self, model_version: Any, path_suffix: str = "") -> transfer.LsResult:
        mv = self._coerce_mv(model_version)
        suffix = path_suffix.strip("/")
        return self.list_run_artifacts(
            mv.run, f"{mv.path_in_run}/{suffix}" if suffix else mv.path_in_run
        )

    def cache_run_artifact(self, run: Any, path_in_run: str = "") -> Path:
        with _not_cached():
            return self.client.cache_run_artifact(self._run_id(run), _path(path_in_run))

    def cache_model_artifact(self, model_version: Any) -> Path:
        with _not_cached():
            return self.client.cache_model_artifact(self._mv_ref(model_version))

    def get_run_artifact(self, run: Any, path_in_run: str = "") -> Path:
        with _not_cached():
            return self.client.get_run_artifact(self._run_id(run), _path(path_in_run))

    def get_model_artifact(self, model_version: Any) -> Path:
        with _not_cached():
            return self.client.get_model_artifact(self._mv_ref(model_version))

    def place_run_artifact(
        self,
        run: Any,
        target: Path,
        path_in_run: str = "",
        overwrite: bool = False,
        link: bool = True,
    ) -> None:
        with _not_cached():
            self.client.place_run_artifact(
                self._run_id(run), target, _path(path_in_run), overwrite, link
            )

    def place_model_artifact(
        self, model_version: Any, target: Path, overwrite: bool = False, link: bool = True
    ) -> None:
        with _not_cached():
            self.client.place_model_artifact(self._mv_ref(model_version), target, overwrite, link)

    def export_run_artifact(self, run: Any, target: Path, path_in_run: str = "") -> Path:
        run_id, prefix = self._run_id(run), _path(path_in_run)
        with _not_cached():
            root = self.client.export_run_artifact(run_id, target, prefix)
        from keel.tracking.metacache import MetadataCache

        folder = MetadataCache(root).run_artifacts_dir(run_id)
        return folder / prefix if prefix else folder

    def export_model_artifact(self, model_version: Any, target: Path) -> Path:
        mv = self._coerce_mv(model_version)
        with _not_cached():
            self.client.export_model_artifact(self._mv_ref(mv), target)
        return self.export_run_artifact(mv.run, target, mv.path_in_run)

    def load_run_artifact(self, run: Any, loader: Callable[[Path], A], path_in_run: str = "") -> A:
        return loader(self.get_run_artifact(run, path_in_run))

    def load_model_artifact(self, model_version: Any, loader: Callable[[Path], A]) -> A:
        return loader(self.get_model_artifact(model_version))

    def log_run_artifact(
        self,
        run: Any,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
    ) -> None:
        """Store a file, folder or dumper's output at ``path_in_run`` (replacing what was
        there). A path ``source`` is removed afterwards when ``keep_the_source=False``."""
        dumper = callable(source)
        if not dumper and (path_in_run is None or path_in_run == ""):
            path_in_run = Path(source).name  # type: ignore[arg-type]
        try:
            self.client.log_run_artifact(
                self._run_id(run),
                source if dumper else Path(source),  # type: ignore[arg-type]
                _path(path_in_run) if path_in_run else None,
                keep_the_source,
                allow_duplication,
                use_cache,
            )
        except (InvalidInput, Offline):
            raise
        except Exception as exc:
            raise exceptions.FailedToPublishArtifact(Path(str(source))) from exc
        _drop_source(source, keep_the_source)

    def log_model_version(
        self,
        model: Any,
        run: Any,
        source: Path | str | Callable[[Path], None],
        path_in_run: str | None = None,
        keep_the_source: bool | None = None,
        allow_duplication: bool | None = None,
        use_cache: bool | None = None,
        version: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersionApi:
        if version is not None:
            raise InvalidInput(
                f"log_model_version(version={version!r}): keel numbers versions itself; "
                "leave version out (a tag can carry your own name)"
            )
        handle = self.client.log_model_version(
            self._model_name(model),
            self._run_id(run),
            source if callable(source) else Path(source),
            _path(path_in_run) if path_in_run else None,
            keep_the_source,
            allow_duplication,
            use_cache,
            tags=tags or {},
        )
        _drop_source(source, keep_the_source)
        return self._mv(handle)


# --- helpers -------------------------------------------------------------------------------


def _drop_source(source: Any, keep_the_source: bool | None) -> None:
    """mlopus' ``keep_the_source=False`` for a path source: remove it once stored."""
    if callable(source) or keep_the_source is not False:
        return
    local = Path(source)
    if local.is_dir() and not local.is_symlink():
        shutil.rmtree(local)
    else:
        local.unlink(missing_ok=True)


def _string(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise InvalidInput(f"expected a {what}, its handle or its id as a string, got {value!r}")


def _path(path_in_run: str | None) -> str:
    """mlopus' path rule: slashes at either end are trimmed."""
    return str(path_in_run or "").strip("/")


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000)


def _query(query: Mapping[str, Any] | None) -> dict[str, Any]:
    """mlopus' ``status`` values are :class:`RunStatus`; keel's are lower-case strings."""
    out: dict[str, Any] = {}
    for key, value in (query or {}).items():
        out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, schema.RunStatus):
        return value.value.lower()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _sorting(sorting: Any) -> list[tuple[str, int]] | None:
    return None if not sorting else [(str(k), int(d)) for k, d in sorting]


def _ls(files: list[Any], prefix: str, when: datetime) -> transfer.LsResult:
    """One level of a listing, as rclone's ``lsjson``: a file alone, or a folder's entries."""
    if len(files) == 1 and files[0].path == prefix and prefix:
        f = files[0]
        return _obj(PurePosixPath(f.path).name, f.size, False, when)
    entries: dict[str, transfer.ObjMeta] = {}
    for f in files:
        rel = f.path[len(prefix) + 1 :] if prefix else f.path
        head, _, rest = rel.partition("/")
        if rest:
            entries.setdefault(head, _obj(head, -1, True, when))
        else:
            entries[head] = _obj(head, f.size, False, when)
    return [entries[k] for k in sorted(entries)]


def _obj(name: str, size: int, is_dir: bool, when: datetime) -> transfer.ObjMeta:
    mime = (
        "inode/directory"
        if is_dir
        else (mimetypes.guess_type(name)[0] or "application/octet-stream")
    )
    return transfer.ObjMeta(Name=name, Size=size, IsDir=is_dir, MimeType=mime, ModTime=when)


@contextmanager
def _not_cached() -> Iterator[None]:
    """keel's Offline (not in the cache) as mlopus' FileNotFoundError."""
    try:
        yield
    except NotCached:
        raise
    except Offline as exc:
        raise NotCached(str(exc)) from exc


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as mlopus returns them: keel keeps ``ns.acc`` flat (each a number with its
    history); mlopus logs and reads ``{"ns": {"acc": …}}``. A key that is both a number and
    a prefix of others (``a`` and ``a.b``) stays flat."""
    nested: dict[str, Any] = {}
    for key in sorted(flat):
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                node = None  # type: ignore[assignment]
                break
            node = child
        if node is None or (parts[-1] in node and isinstance(node[parts[-1]], dict)):
            nested[key] = flat[key]
        else:
            node[parts[-1]] = flat[key]
    return nested
