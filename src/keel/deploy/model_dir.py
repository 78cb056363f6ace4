"""A model version as a plain folder: what a container's ``/opt/ml/model`` holds.

SageMaker tars a training container's ``/opt/ml/model`` into ``model.tar.gz`` and unpacks
it into the serving container's ``/opt/ml/model``; keel's images also carry one baked in.
The folder holds::

    keel-version.json model, version, label, content hash, run id, params, metrics
    version/          the version's artifact, file for file as the registry stores it

``version/`` hashes to the content hash the registry recorded, so a folder that travelled
through S3 is checked before it is used, and registering it again in a store that already
has it finds the same version instead of making another.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import IntegrityError, InvalidInput

if TYPE_CHECKING:
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi, RunApi

INFO = "keel-version.json"
VERSION = "version"


@dataclass
class ModelDirInfo:
    """What ``keel-version.json`` says about the version in the folder."""

    model: str
    version: int | None
    content_hash: str
    label: str | None = None
    run_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name@N`` where the version came from (``name`` when it has no number)."""
        return f"{self.model}@{self.version}" if self.version is not None else self.model


def is_model_dir(folder: Path) -> bool:
    return (folder / INFO).is_file() and (folder / VERSION).is_dir()


def export_model_dir(client: Client, ref: str, target: Path) -> ModelDirInfo:
    """Write version ``ref`` of ``client``'s store into ``target`` (made if missing; its
    ``keel-version.json`` and ``version/`` are replaced)."""
    mv = client.get_model_version(ref)
    source = client.get_model_artifact(mv)  # verified against the registered hash
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target / VERSION, ignore_errors=True)
    shutil.copytree(source, target / VERSION)
    for copied in [target / VERSION, *(target / VERSION).rglob("*")]:
        copied.chmod(0o755 if copied.is_dir() else 0o644)  # the cache's copies are read-only
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    if mv.run_id is not None:
        run = client.get_run(mv.run_id)
        params, metrics = dict(run.params), dict(run.metrics)
    info = ModelDirInfo(
        model=mv.model,
        version=mv.version,
        content_hash=mv.content_hash,
        label=mv.label,
        run_id=mv.run_id,
        params=params,
        metrics=metrics,
    )
    temporary = target / f".{INFO}.partial"
    temporary.write_text(json.dumps(asdict(info), indent=2, default=str), encoding="utf-8")
    temporary.replace(target / INFO)
    return info


def read_model_dir(folder: Path) -> ModelDirInfo:
    """The folder's ``keel-version.json``, after checking ``version/`` against its hash."""
    from keel.hashing import hash_path

    if not is_model_dir(folder):
        raise InvalidInput(
            f"{folder} holds no keel model version ({INFO} and {VERSION}/ expected): "
            "train one with `keel sagemaker local train`, or export one with "
            "`keel container build MODEL@V`"
        )
    try:
        raw = json.loads((folder / INFO).read_text(encoding="utf-8"))
        info = ModelDirInfo(**raw)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{folder / INFO} is not a keel model description: {exc}") from None
    actual = hash_path(folder / VERSION)
    if actual != info.content_hash:
        raise IntegrityError(
            f"{folder / VERSION} does not match the content hash in {INFO} "
            f"({actual[:12]} != {info.content_hash[:12]}): the model files were changed or "
            "damaged on the way; export or train the version again"
        )
    return info


def register_model_dir(
    client: Client,
    folder: Path,
    *,
    run: RunApi | None = None,
    tags: dict[str, Any] | None = None,
    experiment: str | None = None,
) -> ModelVersionApi:
    """Register ``folder/version`` as a version of its model in ``client``'s store.

    A version with the same content is found, not duplicated (its tags are added). Without
    ``run``, a finished run named ``import NAME@N`` holds the files.
    """
    info = read_model_dir(folder)
    existing = client.find_model_versions(
        {"model.name": info.model, "content_hash": info.content_hash}, limit=1
    )
    if existing:
        version = existing[0]
        if tags:
            version = version.set_tags(tags)
        return version
    own_run = run is None
    if run is None:
        run = client.start_run(
            experiment or info.model,
            name=f"import {info.ref}",
            tags={
                "imported_from": info.ref,
                **({"source_run": info.run_id} if info.run_id else {}),
            },
        )
        if info.params:
            run.log_params(info.params)
        numbers = {k: v for k, v in info.metrics.items() if isinstance(v, int | float)}
        if numbers:
            run.log_metrics(numbers)
    try:
        version = run.log_model_version(
            info.model, folder / VERSION, path_in_run="model", label=info.label, tags=tags
        )
    except BaseException as exc:
        if own_run:
            run.end("failed", error=exc)
        raise
    if own_run:
        run.end("finished")
    return version
