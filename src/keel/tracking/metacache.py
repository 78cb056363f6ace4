"""The local metadata cache: JSON copies of experiments, runs, models and versions.

Online clients write what they fetch here; offline clients read only from here. An exported
artifact tree has the same layout, so it can serve as an offline client's cache.

Layout below the cache folder::

    meta/exps/<id>.json               meta/runs/<id>.json
    meta/artifacts/runs/<id>.json     (the run's file list: path, sha256, size)
    meta/models/<project>/<name>.json meta/models/<project>/<name>/v<N>.json
    runs/<id>/artifacts/<path>        (materialised, write-protected files)
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from keel.entities import ArtifactFile, Experiment, ModelVersion, RegisteredModel, Run
from keel.paths import check_path_segment, check_relative_path

T = TypeVar("T")


class MetadataCache:
    """Reads and writes cached metadata under one cache folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # --- paths ---------------------------------------------------------------------------

    def exp_path(self, exp_id: str) -> Path:
        return self.root / "meta" / "exps" / f"{_one(exp_id, 'experiment id')}.json"

    def run_path(self, run_id: str) -> Path:
        return self.root / "meta" / "runs" / f"{_one(run_id, 'run id')}.json"

    def run_files_path(self, run_id: str) -> Path:
        return self.root / "meta" / "artifacts" / "runs" / f"{_one(run_id, 'run id')}.json"

    def model_path(self, project: str, name: str) -> Path:
        return self._models(project) / f"{_relative(name, 'model name')}.json"

    def version_path(self, project: str, name: str, version: int) -> Path:
        return self._models(project) / _relative(name, "model name") / f"v{int(version)}.json"

    def run_artifacts_dir(self, run_id: str) -> Path:
        return self.root / "runs" / _one(run_id, "run id") / "artifacts"

    def _models(self, project: str) -> Path:
        return self.root / "meta" / "models" / _relative(project, "project name")

    # --- writes --------------------------------------------------------------------------

    def put_experiment(self, exp: Experiment) -> None:
        _write_json(self.exp_path(exp.id), dataclasses.asdict(exp))

    def put_run(self, run: Run) -> None:
        _write_json(self.run_path(run.id), dataclasses.asdict(run))

    def put_run_files(self, run_id: str, files: list[ArtifactFile]) -> None:
        _write_json(self.run_files_path(run_id), [dataclasses.asdict(f) for f in files])

    def put_model(self, model: RegisteredModel) -> None:
        _write_json(self.model_path(model.project, model.name), dataclasses.asdict(model))

    def put_version(self, project: str, mv: ModelVersion) -> None:
        _write_json(self.version_path(project, mv.model, mv.version), dataclasses.asdict(mv))

    # --- reads (None when not cached) ----------------------------------------------------

    def experiment(self, exp_id: str) -> Experiment | None:
        return _read(self.exp_path(exp_id), Experiment)

    def run(self, run_id: str) -> Run | None:
        return _read(self.run_path(run_id), Run)

    def run_files(self, run_id: str) -> list[ArtifactFile] | None:
        data = _read_json(self.run_files_path(run_id))
        return None if data is None else [ArtifactFile(**f) for f in data]

    def model(self, project: str, name: str) -> RegisteredModel | None:
        return _read(self.model_path(project, name), RegisteredModel)

    def version(self, project: str, name: str, version: int) -> ModelVersion | None:
        data = _read_json(self.version_path(project, name, version))
        if data is None:
            return None
        data["aliases"] = tuple(data.get("aliases", ()))
        return ModelVersion(**_with_dates(data))

    def versions(self, project: str, name: str) -> list[ModelVersion]:
        folder = self._models(project) / _relative(name, "model name")
        found = []
        for path in sorted(folder.glob("v*.json")) if folder.is_dir() else []:
            version = self.version(project, name, int(path.stem[1:]))
            if version is not None:
                found.append(version)
        return sorted(found, key=lambda v: v.version)


def _relative(value: str, what: str) -> str:
    """``value`` if it is a safe relative path: ids and names come from the store (a remote
    server's answer, an exported folder) and become paths under the cache folder."""
    return check_relative_path(value, what)


def _one(value: str, what: str) -> str:
    """``value`` if it is one safe path segment (an id)."""
    return check_path_segment(value, what)


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    """A datetime in params or tags as the store's wire form keeps it (``{"$date": …}``)."""
    from datetime import datetime

    from keel.store.values import DATE_KEY, date_text

    if isinstance(value, datetime):
        return {DATE_KEY: date_text(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def _with_dates(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the datetimes of its params and tags back as datetimes."""
    from keel.store.values import decode_dates

    return {k: decode_dates(v) if k in ("params", "tags") else v for k, v in data.items()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _read(path: Path, cls: type[T]) -> T | None:
    data = _read_json(path)
    if data is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in _with_dates(data).items() if k in names})
