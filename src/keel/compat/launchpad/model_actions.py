"""ML Launchpad's ``mllaunchpad.model_actions``: train, retest, predict and list, on keel.

Each function takes the config dict of :func:`keel.compat.launchpad.get_validated_config`
and calls keel's lifecycle (:mod:`keel.lifecycle`): training is a tracked run in the store
the config names (``model_store.location`` or ``store:``), registered as the next version of
``model.name`` labelled ``model.version``; retraining a label keeps the earlier version as a
backup (``superseded_by``), which :func:`list_models` lists under ``backups``.

The keyword arguments ML Launchpad offered for debugging keep their meaning:
``persist=False`` trains or retests in this process without storing anything, ``model=``
hands in a model (what ``train_model`` returned) instead of loading one, and
``use_live_code=True`` predicts with the code in ``model.module`` now. ``cache=True`` keeps
the loaded model (and its data sources) between ``predict`` calls of this process.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.compat.launchpad.config import client_for, keel_config
from keel.compat.launchpad.model_interface import LaunchpadModel, ModelInterface
from keel.compat.launchpad.resource import to_plain_python_obj
from keel.errors import InvalidInput, KeelError, NotFound
from keel.models.report import report

if TYPE_CHECKING:
    import os

    from keel.config import Config
    from keel.lifecycle.loading import LoadedModel
    from keel.lifecycle.project import Project
    from keel.models.base import Model, ModelContext
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi

__all__ = [
    "clear_caches",
    "list_models",
    "predict",
    "report",
    "retest",
    "train_model",
]

log = logging.getLogger("keel.compat.launchpad")

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_add_to_train_report = report  # ML Launchpad's private name, which mllaunchpad.report was

# (store, project, version reference, live code) -> an open project and its loaded model
_loaded: dict[tuple[str, str, str, bool], tuple[Project, LoadedModel]] = {}
_loaded_lock = threading.Lock()


def _open(complete_conf: Any) -> Project:
    from keel.lifecycle.project import Project

    config = keel_config(complete_conf)
    return Project.open(config, client_for(config))


class KeelModelWrapper(ModelInterface):
    """What ``train_model`` returns for a model not written the ML Launchpad way."""

    def __init__(self, contents: Any = None, model: Model | None = None) -> None:
        super().__init__(contents)
        self.model = model

    def predict(
        self,
        model_conf: dict[str, Any],
        data_sources: dict[str, Any],
        data_sinks: dict[str, Any],
        model: Any,
        args_dict: dict[str, Any],
    ) -> Any:
        raise InvalidInput(
            "this model is not ML Launchpad-style code: predict with "
            "keel.compat.launchpad.predict(conf, arg_dict=...) or keel.load_model()"
        )


def _wrapper(model: Model, fitted: Any) -> ModelInterface:
    if isinstance(model, LaunchpadModel):
        return model.interface(contents=fitted)
    return KeelModelWrapper(contents=fitted, model=model)


def _context(project: Project, phase: str, work: Path, **more: Any) -> ModelContext:
    (work / "model").mkdir(parents=True, exist_ok=True)
    return project.context(phase, work / "tmp", work / "model", **more)


def train_model(
    complete_conf: dict[str, Any],
    cache: bool = True,
    persist: bool = True,
    test: bool = True,
    model: ModelInterface | None = None,
) -> tuple[ModelInterface, dict[str, Any]]:
    """Train (and test) the config's model; returns ``(model, metrics)``.

    With ``persist`` (the default) this is ``keel train``: a tracked run whose result is
    registered as the next version of ``model.name``, labelled ``model.version``.
    ``persist=False`` trains in this process and stores nothing. ``model`` (either way) is
    the previous model handed to ``create_trained_model(old_model=...)`` instead of the
    latest stored version.
    """
    clear_caches()  # predictions made after this use the new version
    if persist:
        return _train_and_register(complete_conf, test, model)
    return _train_here(complete_conf, test, model)


def _train_and_register(
    complete_conf: Any, test: bool, model: ModelInterface | None
) -> tuple[ModelInterface, dict[str, Any]]:
    from keel.lifecycle.loading import load_version
    from keel.lifecycle.training import train

    config = keel_config(complete_conf)
    client = client_for(config)
    if model is not None:
        result = train(config, client=client, test=test, previous=model.contents)
    else:
        result = train(config, client=client, test=test)
    project = _open(config)
    try:
        ref = f"{result.version.model}@{result.version.version}"
        with load_version(project, project.client, ref) as loaded:
            wrapper = _wrapper(loaded.model, loaded.fitted)
    finally:
        project.close()
    log.info(
        "trained %s version %s (label %s), metrics %s",
        result.version.model,
        result.version.version,
        result.version.label,
        result.metrics,
    )
    return wrapper, to_plain_python_obj(result.metrics)


def _train_here(
    complete_conf: Any, test: bool, model: ModelInterface | None
) -> tuple[ModelInterface, dict[str, Any]]:
    from keel.models.base import MemoryTracker
    from keel.models.report import tracking

    project = _open(complete_conf)
    try:
        code = project.model_code()
        previous = model.contents if model is not None else _stored_fitted(project)
        tracker = MemoryTracker()
        with tempfile.TemporaryDirectory(prefix="keel-lp-train-") as tmp, tracking(tracker):
            work = Path(tmp)
            ctx = _context(project, "train", work, tracker=tracker, previous=previous)
            fitted = code.train(ctx)
            metrics: dict[str, Any] = {}
            if test:
                test_ctx = _context(project, "test", work, tracker=tracker, fitted=fitted)
                metrics = dict(code.evaluate(test_ctx, fitted) or {})
        return _wrapper(code, fitted), to_plain_python_obj(metrics)
    finally:
        project.close()


def _stored_fitted(project: Project) -> Any:
    """The fitted model of the config's version, or None when there is none yet."""
    from keel.lifecycle.loading import load_version

    try:
        with tempfile.TemporaryDirectory(prefix="keel-lp-prev-") as tmp:
            loaded = load_version(
                project, project.client, project.resolve_ref(None), "train", work_dir=Path(tmp)
            )
            return loaded.fitted
    except NotFound:
        return None


def retest(
    complete_conf: dict[str, Any],
    cache: bool = True,
    persist: bool = True,
    model: ModelInterface | None = None,
) -> dict[str, Any]:
    """Test the stored version of the config's label (``keel retest``); returns the metrics.

    With ``persist`` its metrics are updated in the store. ``persist=False`` or ``model``
    (a model from :func:`train_model`) tests in this process and stores nothing.
    """
    if persist and model is None:
        from keel.lifecycle.training import retest as keel_retest

        config = keel_config(complete_conf)
        result = keel_retest(config, client=client_for(config))
        return to_plain_python_obj(result.metrics)  # type: ignore[no-any-return]
    from keel.models.base import MemoryTracker
    from keel.models.report import tracking

    project = _open(complete_conf)
    try:
        code = project.model_code()
        fitted = model.contents if model is not None else _stored_fitted(project)
        if fitted is None:
            raise NotFound(f"no stored version {project.resolve_ref(None)} to retest; train first")
        tracker = MemoryTracker()
        with tempfile.TemporaryDirectory(prefix="keel-lp-test-") as tmp, tracking(tracker):
            ctx = _context(project, "test", Path(tmp), tracker=tracker, fitted=fitted)
            metrics = dict(code.evaluate(ctx, fitted) or {})
        return to_plain_python_obj(metrics)  # type: ignore[no-any-return]
    finally:
        project.close()


def predict(
    complete_conf: dict[str, Any],
    arg_dict: dict[str, Any] | None = None,
    cache: bool = True,
    model: ModelInterface | None = None,
    use_live_code: bool = False,
) -> Any:
    """One prediction with the stored version of the config's label; plain Python out.

    ``use_live_code`` runs the code in ``model.module`` now instead of the stored code;
    ``model`` (from :func:`train_model`) predicts with that model, nothing loaded.
    """
    args = dict(arg_dict or {})
    if model is not None:
        return _predict_with(complete_conf, model, args)
    config = keel_config(complete_conf)
    if not cache:
        project, loaded = _load(config, use_live_code)
        try:
            return _predict_loaded(loaded, args)
        finally:
            loaded.close()
            project.close()
    client_key = config.store.url or ""
    key = (client_key, config.project or "", _ref_of(config), use_live_code)
    with _loaded_lock:
        entry = _loaded.get(key)
        if entry is None:
            entry = _loaded[key] = _load(config, use_live_code)
    return _predict_loaded(entry[1], args)


def _ref_of(config: Config) -> str:
    model = config.settings.model
    name = model.name if model is not None else ""
    label = model.version if model is not None else None
    return f"{name}@{label or 'latest'}"


def _load(config: Config, live_code: bool) -> tuple[Project, LoadedModel]:
    from keel.lifecycle.loading import load_version

    project = _open(config)
    try:
        loaded = load_version(
            project, project.client, project.resolve_ref(None), live_code=live_code
        )
    except BaseException:
        project.close()
        raise
    return project, loaded.setup()


def _predict_loaded(loaded: LoadedModel, args: dict[str, Any]) -> Any:
    loaded.setup()
    return to_plain_python_obj(loaded.model.predict(loaded.ctx, loaded.fitted, args))


def _predict_with(complete_conf: Any, model: ModelInterface, args: dict[str, Any]) -> Any:
    project = _open(complete_conf)
    try:
        with tempfile.TemporaryDirectory(prefix="keel-lp-predict-") as tmp:
            ctx = _context(project, "predict", Path(tmp), fitted=model.contents)
            output = model.predict(ctx.model_conf, ctx.sources, ctx.sinks, model.contents, args)
        return to_plain_python_obj(output)
    finally:
        project.close()


def clear_caches() -> None:
    """Forget the models ``predict`` keeps loaded (their ``teardown`` runs)."""
    with _loaded_lock:
        entries = list(_loaded.values())
        _loaded.clear()
    for project, loaded in entries:
        try:
            loaded.close()
        finally:
            project.close()


# --- list_models ---------------------------------------------------------------------------


def list_models(
    model_store_location_or_config_dict: dict[str, Any] | str | os.PathLike[str],
) -> dict[str, dict[str, Any]]:
    """Every model in the store, by name: its versions by label, ``latest`` and ``backups``.

    ``{"iris": {"1.0.0": {...}, "1.1.0": {...}, "latest": {...}, "backups": [{...}]}}``:
    each value is a version's metadata (name, version label, created, created_by,
    metrics, metrics_history, train_report, system, config_snapshot and keel's own
    ``keel_version``, ``run_id``, ``content_hash``); ``latest`` is the most recently
    registered label; ``backups`` are the versions a retraining with the same label
    replaced (still loadable in keel: ``keel predict --version N``). Takes the config
    dict or a store location (a folder, ``sqlite:///…``, ``postgresql://…``).
    """
    target = model_store_location_or_config_dict
    if isinstance(target, dict):
        client = client_for(keel_config(target))
    else:
        from keel.tracking.client import Client

        client = Client(store=str(target))
    try:
        return _list(client)
    finally:
        client.close()


def _list(client: Client) -> dict[str, dict[str, Any]]:
    from keel.lifecycle.training import SUPERSEDED_TAG

    result: dict[str, dict[str, Any]] = {}
    versions = client.find_model_versions(sort=[("version", 1)])
    for mv in versions:
        entry = result.setdefault(mv.model, {"backups": []})
        meta = _metadata(client, mv)
        if SUPERSEDED_TAG in mv.tags:
            entry["backups"].append(meta)
        else:
            entry[meta["version"]] = meta
            entry["latest"] = meta  # sorted by version number: the last one wins
    return result


def _metadata(client: Client, mv: ModelVersionApi) -> dict[str, Any]:
    report_items = _run_json(client, mv.run_id, "train_report.json") or {}
    metrics: dict[str, Any] = dict(mv.metrics)
    train_report: dict[str, Any] = {}
    for key, value in report_items.items():
        if key.startswith("metrics."):
            metrics.setdefault(key[len("metrics.") :], value)
        else:
            train_report[key] = value
    meta: dict[str, Any] = {
        "name": mv.model,
        "version": mv.label or str(mv.version),
        "created": datetime.fromtimestamp(mv.created_at / 1000).strftime(DATE_FORMAT),
        "created_by": mv.author,
        "metrics": metrics,
        "metrics_history": _history(client, mv.run_id, list(mv.metrics)),
        "train_report": train_report,
        "keel_version": mv.version,
        "run_id": mv.run_id,
        "content_hash": mv.content_hash,
        "aliases": list(mv.aliases),
        "tags": dict(mv.tags),
    }
    if mv.run_id:
        try:
            run = client.get_run(mv.run_id)
            meta["system"] = dict(run.environment)
        except KeelError:
            pass
    snapshot = _run_yaml(client, mv.run_id, "config/keel.yml")
    if snapshot is not None:
        meta["config_snapshot"] = snapshot
    return meta


def _history(client: Client, run_id: str | None, keys: list[str]) -> dict[str, dict[str, float]]:
    history: dict[str, dict[str, float]] = {}
    if not run_id:
        return history
    for key in keys:
        for point in client.get_metric_history(run_id, key):
            when = datetime.fromtimestamp(point.timestamp / 1000).strftime(DATE_FORMAT)
            history.setdefault(when, {})[key] = point.value
    return history


def _run_file(client: Client, run_id: str | None, path: str) -> Path | None:
    if not run_id:
        return None
    try:
        return client.get_run_artifact(run_id, path)
    except KeelError:
        return None


def _run_json(client: Client, run_id: str | None, path: str) -> Any:
    import json

    found = _run_file(client, run_id, path)
    return json.loads(found.read_text(encoding="utf-8")) if found is not None else None


def _run_yaml(client: Client, run_id: str | None, path: str) -> Any:
    found = _run_file(client, run_id, path)
    if found is None:
        return None
    import yaml

    return yaml.safe_load(found.read_text(encoding="utf-8"))
