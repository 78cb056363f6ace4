"""``keel train`` and ``keel retest``: fit, evaluate, register and record, in a tracked run."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError, NotFound
from keel.lifecycle.artifact import FILES, Manifest, write_model_files
from keel.lifecycle.fingerprints import fingerprints
from keel.lifecycle.project import Project
from keel.lifecycle.runs import json_writer, scratch, tracked_run
from keel.lifecycle.tracker import RunTracker, split_metrics
from keel.models.report import tracking

if TYPE_CHECKING:
    from keel.config import Config
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi, RunApi

log = logging.getLogger("keel.lifecycle")

REPORT_ARTIFACT = "train_report.json"
CONFIG_ARTIFACT = "config/keel.yml"
DATA_ARTIFACT = "data/fingerprints.json"
SUPERSEDED_TAG = "superseded_by"


@dataclass
class TrainResult:
    """What ``train`` made: the new version, its run, metrics and train report."""

    version: ModelVersionApi
    run: RunApi
    metrics: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    superseded: list[int] = field(default_factory=list)


@dataclass
class RetestResult:
    version: ModelVersionApi
    run: RunApi
    metrics: dict[str, Any] = field(default_factory=dict)


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"tree": {"depth": 3}}`` → ``{"tree.depth": 3}``: the names runs show."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat


#: ``train(previous=…)`` not given: the latest stored version's fitted model
_LATEST: Any = object()


def _previous(project: Project, work: Path) -> Any:
    """The latest version's fitted model, for incremental training (None if none)."""
    from keel.lifecycle.loading import load_version

    try:
        loaded = load_version(
            project, project.client, f"{project.name}@latest", "train", work_dir=work
        )
    except NotFound:
        return None
    except KeelError as exc:
        log.warning(
            "the previous version of %s cannot be loaded (%s): training from scratch",
            project.name,
            exc,
        )
        return None
    return loaded.fitted


def train(
    config: Config | str | os.PathLike[str] | None = None,
    *,
    dataset: str | None = None,
    client: Client | None = None,
    fresh: bool = False,
    test: bool = True,
    previous: Any = _LATEST,
) -> TrainResult:
    """Train ``model.module`` on the ``train`` data, test it on the ``test`` data and
    register the result as the next version of ``model.name``, labelled ``model.version``.

    Args:
        config: keel.yml (default: ``KEEL_CONFIG`` or ``./keel.yml``).
        dataset: ``NAME`` or ``NAME@VERSION`` of a registered dataset whose files the model
            finds in ``ctx.dataset_dir``.
        client: the store (default: as keel.yml and the environment say).
        fresh: do not pass the previous version's fitted model to ``train``.
        test: evaluate on the ``test`` data after training.
        previous: the fitted model handed to ``train`` as ``ctx.previous`` (default: the
            latest stored version's; ML Launchpad's ``train_model(model=…)``).
    """
    project = Project.open(config, client)
    try:
        return _train(project, dataset, fresh, test, previous)
    finally:
        project.close()


def _train(
    project: Project, dataset: str | None, fresh: bool, test: bool, given: Any = None
) -> TrainResult:
    name, label = project.name, project.label
    model = project.model_code()
    tags = {"model": name, "style": model.style}
    if label:
        tags["label"] = label
    client = project.client
    with scratch("train") as work, tracked_run(project, "train", f"train {name}", tags) as run:
        tracker = RunTracker(run)
        staging = work / "model"
        (staging / FILES).mkdir(parents=True)
        run.log_artifact(json_writer(project.config.snapshot()), CONFIG_ARTIFACT)
        stored_conf = project.stored_model_conf  # secrets as written: names, not values
        params = flat_params(stored_conf.get("params") or {})
        if params:
            run.log_params(params)
        dataset_dir = None
        if dataset:
            ds_name, _, ds_ref = dataset.partition("@")
            ds = client.get_dataset(ds_name, ds_ref or "latest")
            run.use_dataset(ds)
            run.set_tags({"dataset": f"{ds.name}@{ds.version}"})
            dataset_dir = client.get_dataset_files(ds)
        if given is not _LATEST and given is not None:
            previous = given
        else:
            previous = None if fresh else _previous(project, work / "previous")
        ctx = project.context(
            "train",
            work / "tmp",
            staging / FILES,
            tracker,
            previous=previous,
            dataset_dir=dataset_dir,
            run_id=run.id,
        )
        used = dict(ctx.sources)
        with tracking(tracker):
            fitted = model.train(ctx)
            metrics: dict[str, Any] = {}
            if test:
                test_ctx = project.context(
                    "test",
                    work / "tmp",
                    staging / FILES,
                    tracker,
                    fitted=fitted,
                    dataset_dir=dataset_dir,
                    run_id=run.id,
                )
                used.update(test_ctx.sources)
                metrics = dict(model.evaluate(test_ctx, fitted) or {})
        tracker.log_metrics(metrics)
        run.log_artifact(json_writer(fingerprints(used)), DATA_ARTIFACT)
        if tracker.items:
            run.log_artifact(json_writer(tracker.items), REPORT_ARTIFACT)
        run.flush()
        manifest = Manifest(
            model=name,
            label=label,
            style=model.style,
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
            run_id=run.id,
            trained_at=time.time(),
            fitted=[],
            libraries={},
            model_conf=stored_conf,
        )
        write_model_files(
            staging, model, fitted, project.formats, manifest, project.config.base_dir
        )
        version = run.log_model_version(name, staging, path_in_run="model", label=label)
        shutil.rmtree(staging, ignore_errors=True)
        from keel.lifecycle.monitoring import reference_after_training

        reference_after_training(project, version, dataset_dir, work / "monitor")
        superseded = _supersede(client, version) if label else []
        run.set_tags({"model_version": version.version})
    return TrainResult(version, run.refresh(), metrics, tracker.items, superseded)


def _supersede(client: Client, version: ModelVersionApi) -> list[int]:
    """Mark earlier versions with the same label as superseded by ``version``."""
    older = client.find_model_versions(
        {"model.name": version.model, "label": version.label, "version": {"$lt": version.version}}
    )
    marked = []
    for mv in older:
        if SUPERSEDED_TAG not in mv.tags:
            mv.set_tags({SUPERSEDED_TAG: version.version})
            marked.append(mv.version)
    return marked


def retest(
    config: Config | str | os.PathLike[str] | None = None,
    ref: str | None = None,
    *,
    client: Client | None = None,
) -> RetestResult:
    """Evaluate a stored version on the current ``test`` data; its metrics are updated and
    the values appended to its metric history (the training run's, one step further)."""
    from keel.lifecycle.loading import load_version

    project = Project.open(config, client)
    try:
        ref = project.resolve_ref(ref)
        mv = project.client.get_model_version(ref)
        tags = {"model": mv.model, "model_version": mv.version}
        title = f"retest {mv.model} v{mv.version}"
        with scratch("retest") as work, tracked_run(project, "retest", title, tags) as run:
            tracker = RunTracker(run)
            loaded = load_version(
                project,
                project.client,
                f"{mv.model}@{mv.version}",
                "test",
                tracker=tracker,
                work_dir=work,
            )
            with tracking(tracker):
                metrics = dict(loaded.model.evaluate(loaded.ctx, loaded.fitted) or {})
            tracker.log_metrics(metrics)
            if tracker.items:
                run.log_artifact(json_writer(tracker.items), "retest_report.json")
            numeric, _ = split_metrics(metrics)
            if numeric:
                updated = project.client.update_model_version_metrics(mv, numeric)
                _append_history(project.client, mv.run_id, numeric)
            else:
                updated = mv
        return RetestResult(updated, run.refresh(), metrics)
    finally:
        project.close()


def _append_history(client: Client, run_id: str | None, metrics: dict[str, float]) -> None:
    if run_id is None:
        return
    for key, value in metrics.items():
        history = client.get_metric_history(run_id, key)
        step = max((m.step for m in history), default=-1) + 1
        client.log_metrics(run_id, {key: value}, step=step)
    client.flush(run_id)
