"""The SageMaker container contract, as keel's images keep it: ``train`` and ``serve``.

SageMaker starts a training container with the argument ``train`` and this layout::

    /opt/ml/input/config/hyperparameters.json   {"C": "0.5", ...}: every value a string
    /opt/ml/input/data/<channel>/               one folder per input channel
    /opt/ml/model/                              what is left here becomes model.tar.gz
    /opt/ml/output/failure                      why the job failed (its FailureReason)

and a serving container with ``serve``: listen on port 8080 (``SAGEMAKER_BIND_TO_PORT``),
answer ``GET /ping`` within 2 s and ``POST /invocations``, the model unpacked into
``/opt/ml/model``.

keel reads hyperparameters back into the types of keel.yml's ``model.params`` (flat names
as runs show them: ``C``, ``tree.max_depth``), points each data source named like a channel
at that channel's files (a ``training`` channel that names no data source is the dataset
``ctx.dataset_dir`` shows, as ML2P's habit has it), trains with ``keel train`` into a store
of the job's own (``KEEL_STORE`` when given), and leaves the version in ``/opt/ml/model``
(:mod:`keel.deploy.model_dir`). Serving registers that folder in a store (``KEEL_STORE``, or
one of the container's own) and runs ``keel serve`` on it with the SageMaker and ML2P
environment: workers, timeout, payload limit, and ``ML2P_RECORD_INVOKES`` with records going
to ``KEEL_ARTIFACTS`` or ML2P's ``ML2P_S3_URL``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.deploy.model_dir import ModelDirInfo
from keel.errors import ConfigError, InvalidInput, KeelError

log = logging.getLogger("keel.deploy")

#: SageMaker's own hyperparameters (its SDK's estimators add them): not the model's
SAGEMAKER_PREFIX = "sagemaker_"
#: the dataset channel of ML2P's training jobs
DATASET_CHANNEL = "training"
#: the config keel writes beside the project's, with the settings the platform gave
DERIVED_CONFIG = ".keel-sagemaker.yml"
#: a failure reason SageMaker shows is cut at 1 KiB: the one line comes first
FAILURE_LIMIT = 1024


@dataclass(frozen=True)
class MlFolder:
    """SageMaker's ``/opt/ml`` layout under ``root``."""

    root: Path

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    def channels(self) -> dict[str, Path]:
        """``{channel: folder}`` of the input data channels."""
        if not self.data.is_dir():
            return {}
        return {p.name: p for p in sorted(self.data.iterdir()) if p.is_dir()}

    def write_failure(self, text: str) -> None:
        self.failure.parent.mkdir(parents=True, exist_ok=True)
        self.failure.write_text(text, encoding="utf-8")


# --- hyperparameters ------------------------------------------------------------------------


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def typed_value(name: str, text: Any, default: Any) -> Any:
    """``text`` (SageMaker gives strings) as the type of keel.yml's ``default``."""
    if not isinstance(text, str):
        return text  # a local run may hand real values
    kind = type(default)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError("not true or false")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind in (list, dict):
            value = json.loads(text)
            if not isinstance(value, kind):
                raise ValueError(f"not a JSON {kind.__name__}")
            return value
        if default is None:
            import yaml

            return yaml.safe_load(text)  # untyped: read as YAML would read it
    except ValueError as exc:
        raise InvalidInput(
            f"hyperparameter {name}={text!r} is not a {kind.__name__} like keel.yml's "
            f"model.params.{name} ({default!r}): {exc}"
        ) from None
    return text


def typed_hyperparameters(given: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters SageMaker gave, typed back through keel.yml's ``model.params``.

    A name keel.yml does not declare is refused (a typo would otherwise train silently with
    the default); SageMaker's own ``sagemaker_*`` entries are left out.
    """
    from keel.lifecycle.training import flat_params

    known = flat_params(params)
    typed: dict[str, Any] = {}
    for name, text in given.items():
        if name.startswith(SAGEMAKER_PREFIX):
            continue
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"hyperparameter {name!r} is not one of keel.yml's model.params ({names}): "
                "declare it there with its default"
            )
        typed[name] = typed_value(name, text, known[name])
    return typed


def read_hyperparameters(ml: MlFolder) -> dict[str, Any]:
    """``hyperparameters.json`` (``{}`` when there is none)."""
    if not ml.hyperparameters.is_file():
        return {}
    try:
        value = json.loads(ml.hyperparameters.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{ml.hyperparameters} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{ml.hyperparameters} must hold a JSON object of name: value")
    return value


def _param_loc(name: str) -> tuple[str, ...]:
    return ("model", "params", *name.split("."))


# --- channels -------------------------------------------------------------------------------


def channel_path(folder: Path) -> Path:
    """A channel's one file, or the folder when it holds several (or none)."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return files[0] if len(files) == 1 else folder


# --- train ----------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    """What a training container made: the version in ``/opt/ml/model`` and the settings."""

    info: ModelDirInfo
    hyperparameters: dict[str, Any]
    channels: dict[str, str]
    dataset: str | None


def project_config(project_dir: Path) -> Path:
    from keel.config import DEFAULT_CONFIG_NAME

    path = project_dir / DEFAULT_CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"no {DEFAULT_CONFIG_NAME} in {project_dir}: the image holds no keel project "
            "(build it with `keel container build` in the project's folder)"
        )
    return path


def _store_for(environ: Mapping[str, str], purpose: str) -> tuple[str, str | None]:
    """(store, artifacts): the team's store when the environment names one, else a new
    embedded store in a temporary folder (the container's own)."""
    store = environ.get("KEEL_STORE")
    artifacts = environ.get("KEEL_ARTIFACTS")
    if store:
        return store, artifacts
    return tempfile.mkdtemp(prefix=f"keel-{purpose}-store-"), artifacts


def train(
    ml: MlFolder, project_dir: Path, environ: Mapping[str, str] | None = None
) -> TrainOutcome:
    """Run the training half of the contract; on failure write ``output/failure`` and raise."""
    environ = os.environ if environ is None else environ
    try:
        return _train(ml, project_dir, environ)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
        # a mistake in the request (a keel error of its own) is its one line; anything the
        # model's code raised keeps its traceback, for its author
        caused = exc.__cause__ is not None or (
            exc.__context__ is not None and not exc.__suppress_context__
        )
        own = isinstance(exc, KeelError) and not caused
        detail = "" if own else "\n\n" + traceback.format_exc()
        ml.write_failure((reason[:FAILURE_LIMIT] + detail).strip() + "\n")
        raise


def _train(ml: MlFolder, project_dir: Path, environ: Mapping[str, str]) -> TrainOutcome:
    from keel.config import load_config
    from keel.deploy.model_dir import export_model_dir
    from keel.lifecycle.training import train as keel_train
    from keel.tracking.client import Client

    config = load_config(project_config(project_dir))
    model = config.settings.model
    if model is None or not model.name:
        raise ConfigError(f"{config.describe()} has no model: section with a name to train")
    wanted = environ.get("KEEL_MODEL")
    if wanted and wanted != model.name:
        raise ConfigError(
            f"the training job asks for model {wanted} (KEEL_MODEL) but {config.describe()} "
            f"trains {model.name}: the job names another project's image"
        )
    hyper = typed_hyperparameters(read_hyperparameters(ml), model.params)
    changes: dict[tuple[str | int, ...], Any] = {_param_loc(k): v for k, v in hyper.items()}
    sources = set(config.settings.datasources or {})
    used_channels: dict[str, str] = {}
    dataset_folder: Path | None = None
    for channel, folder in ml.channels().items():
        if channel in sources:
            path = channel_path(folder)
            changes[("datasources", channel, "path")] = str(path)
            used_channels[channel] = str(path)
        elif channel == DATASET_CHANNEL:
            dataset_folder = folder
            used_channels[channel] = str(folder)
        else:
            raise InvalidInput(
                f"input channel {channel!r} names no data source of keel.yml "
                f"({', '.join(sorted(sources)) or 'none'}) and is not {DATASET_CHANNEL!r} "
                "(the dataset): rename the channel or add the data source"
            )
    path = config.path
    assert path is not None
    config = config.write_with(changes, path.with_name(DERIVED_CONFIG))
    store, artifacts = _store_for(environ, "train")
    client = Client(store=store, artifacts=artifacts, project=config.project)
    try:
        dataset = None
        if dataset_folder is not None:
            name = environ.get("ML2P_DATASET") or f"{model.name}-training"
            dataset = f"{name}@{client.log_dataset(name, dataset_folder).version}"
        result = keel_train(config, dataset=dataset, client=client)
        if hyper:
            result.run.set_tags({"sagemaker_hyperparameters": json.dumps(hyper, default=str)})
        job = environ.get("TRAINING_JOB_NAME") or environ.get("ML2P_TRAINING_JOB")
        if job:
            result.run.set_tags({"sagemaker_training_job": job})
        info = export_model_dir(
            client, f"{result.version.model}@{result.version.version}", ml.model
        )
    finally:
        client.close()
        if not environ.get("KEEL_STORE"):  # the job's own store: its version is exported
            import shutil

            shutil.rmtree(store, ignore_errors=True)
    for key, value in sorted(result.metrics.items()):
        if isinstance(value, int | float):
            # SageMaker reads metrics from the log with the job's MetricDefinitions regexes
            print(f"keel metric {key}={value}", flush=True)
    return TrainOutcome(info, hyper, used_channels, dataset)


# --- serve ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeSettings:
    """What the SageMaker and ML2P environment asks of the server."""

    port: int = 8080
    workers: int = 1
    timeout_s: float | None = None
    max_body_mb: float | None = None
    record_invokes: bool | None = None
    artifacts: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServeSettings:
        def number(name: str, kind: type, low: float) -> Any:
            text = environ.get(name)
            if text in (None, ""):
                return None
            try:
                value = kind(text)
            except ValueError:
                raise ConfigError(f"{name}={text!r} is not a {kind.__name__}") from None
            if value < low:
                raise ConfigError(f"{name}={text!r} must be at least {low}")
            return value

        record = environ.get("ML2P_RECORD_INVOKES") or environ.get("KEEL_RECORD_INVOKES")
        s3 = environ.get("ML2P_S3_URL")
        return cls(
            port=number("SAGEMAKER_BIND_TO_PORT", int, 1) or 8080,
            workers=number("SAGEMAKER_MODEL_SERVER_WORKERS", int, 1) or 1,
            timeout_s=number("SAGEMAKER_MODEL_SERVER_TIMEOUT", float, 0),
            max_body_mb=number("SAGEMAKER_MAX_PAYLOAD_IN_MB", float, 0.001),
            record_invokes=None if record is None else record.strip().lower() in _TRUE,
            artifacts=environ.get("KEEL_ARTIFACTS") or (s3.rstrip("/") + "/keel" if s3 else None),
        )


@dataclass
class Prepared:
    """A model folder registered and ready for ``keel serve``."""

    ref: str
    config: Path | None
    store: str
    artifacts: str | None
    settings: ServeSettings
    project: str | None = None


def prepare_serve(
    ml: MlFolder,
    project_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    baked: Path | None = None,
) -> Prepared:
    """Register the version in ``/opt/ml/model`` (else the image's ``baked`` one) in the
    serving store and write the config ``keel serve`` will read."""
    from keel.config import DEFAULT_CONFIG_NAME, load_config
    from keel.deploy.model_dir import is_model_dir, read_model_dir, register_model_dir
    from keel.tracking.client import Client

    environ = os.environ if environ is None else environ
    settings = ServeSettings.from_environ(environ)
    folder = ml.model
    if not is_model_dir(folder) and baked is not None and is_model_dir(baked):
        folder = baked
    wanted = environ.get("KEEL_MODEL_VERSION") or None
    store, _ = _store_for(environ, "serve")
    if not is_model_dir(folder):
        if not (wanted and environ.get("KEEL_STORE")):
            raise ConfigError(
                f"no model to serve: {ml.model} holds no keel version (model.tar.gz of a keel "
                "training job) and the image has none built in; or set KEEL_MODEL_VERSION "
                "and KEEL_STORE to serve a version from the team's store"
            )
        folder = None  # the version comes from the team's store
    elif wanted:
        found = read_model_dir(folder).ref
        if found != wanted:
            raise ConfigError(
                f"{folder} holds {found} but KEEL_MODEL_VERSION says {wanted}: the SageMaker "
                "model points at another training job's model.tar.gz"
            )
    artifacts = settings.artifacts
    config_path: Path | None = None
    changes: dict[tuple[str | int, ...], Any] = {}
    if settings.record_invokes is not None:
        changes[("api", "record_invokes")] = settings.record_invokes
    if settings.max_body_mb is not None:
        changes[("api", "max_body_mb")] = settings.max_body_mb
    project = environ.get("KEEL_PROJECT") or None
    if project_dir is not None and (project_dir / DEFAULT_CONFIG_NAME).is_file():
        config = load_config(project_dir / DEFAULT_CONFIG_NAME)
        config_path = config.write_with(changes, project_dir / DERIVED_CONFIG).path
        project = project or config.project
    elif changes:
        target = Path(tempfile.mkdtemp(prefix="keel-serve-config-")) / DEFAULT_CONFIG_NAME
        config_path = load_config(None, env={}).write_with(changes, target).path
    client = Client(store=store, artifacts=artifacts, project=project)
    try:
        if folder is None:
            version = client.get_model_version(str(wanted))
        else:
            served_by = environ.get("ML2P_MODEL_VERSION") or "sagemaker"
            version = register_model_dir(client, folder, tags={"served_by": served_by})
        ref = f"{version.model}@{version.version}"
    finally:
        client.close()
    return Prepared(ref, config_path, store, artifacts, settings, project)


def serve(
    ml: MlFolder,
    project_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    baked: Path | None = None,
    host: str = "0.0.0.0",
) -> None:
    """Run the serving half of the contract until SIGTERM."""
    from keel.server.protocol import SlowClientTimeouts
    from keel.serving.server import ServeOptions
    from keel.serving.server import serve as run

    prepared = prepare_serve(ml, project_dir, environ, baked)
    os.environ["KEEL_STORE"] = prepared.store  # the worker processes read them
    if prepared.artifacts:
        os.environ["KEEL_ARTIFACTS"] = prepared.artifacts
    if prepared.project:
        os.environ["KEEL_PROJECT"] = prepared.project
    settings = prepared.settings
    log.warning(
        "keel: serving %s on %s:%d (%d worker(s))",
        prepared.ref,
        host,
        settings.port,
        settings.workers,
    )
    run(
        prepared.ref,
        prepared.config,
        ServeOptions(
            host=host,
            port=settings.port,
            workers=settings.workers,
            timeout_s=settings.timeout_s,
            http=SlowClientTimeouts,
        ),
    )
