"""ML2P's core on keel: change ``from ml2p.core import …`` to this module.

What ML2P code imports is here with ML2P's behaviour: :class:`Model` (``.trainer(env)``,
``.predictor(env)``, ``.dataset_generator(env)``), :class:`ModelTrainer`,
:class:`ModelPredictor` (``invoke``, ``batch_invoke``, ``record_invoke``),
:class:`ModelDatasetGenerator` (``upload_to_s3``), the environments
:class:`SageMakerEnv` (read from the ``ML2P_*`` variables, as in a SageMaker container) and
:class:`LocalEnv` (read from ml2p.yml; its downloads come from keel's store), and
:class:`S3URL`.

keel runs such a model through :class:`Ml2pModel` (found by :mod:`keel.models.styles` through
``Model.__keel_adapter__``): the trainer writes into ``env.model_folder()``, keel stores that
folder as the model version and hands it back to the predictor. The environment keel passes
is a :class:`KeelEnv`, a :class:`SageMakerEnv` whose folders are keel's. Its answer hooks
give keel's prediction API ML2P's wire shapes (batch ``{"predictions": [{"metadata",
"result"}]}``, ``/ping`` with ``ml2p_version``, :mod:`~keel.compat.ml2p.errors` as
``{"message", "details"}``). keel adds one optional hook: a trainer ``evaluate()``
returning metrics, used after training and by ``keel retest``.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import shutil
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from keel.compat.ml2p import __version__ as ml2p_version
from keel.compat.ml2p.errors import APIError, LocalEnvError
from keel.errors import ConfigError
from keel.models.adapter import Adapter
from keel.models.base import ModelContext, default_invoke_id, invoke_record_name, records
from keel.models.report import report

__all__ = [
    "S3URL",
    "KeelEnv",
    "LocalEnv",
    "Model",
    "ModelDatasetGenerator",
    "ModelPredictor",
    "ModelTrainer",
    "ModellingProject",
    "SageMakerEnv",
    "SageMakerEnvType",
    "import_string",
    "report",
]


class ModellingProject:
    """An ml2p.yml read as ML2P reads it: ``project``, ``s3`` and the sub-sections."""

    def __init__(self, cfg: str | os.PathLike[str]) -> None:
        from keel.config.ml2p_file import read_ml2p_file

        self.path = Path(cfg)
        self.cfg = read_ml2p_file(self.path)
        self.project = self.cfg["project"]
        self.s3 = S3URL(self.cfg["s3folder"])
        self.train = ModellingSubCfg(self.cfg, "train")
        self.deploy = ModellingSubCfg(self.cfg, "deploy")
        self.dataset = ModellingSubCfg(self.cfg, "dataset")
        self.notebook = ModellingSubCfg(self.cfg, "notebook")
        self.models = ModellingSubCfg(self.cfg, "models", defaults="models")

    def full_job_name(self, job_name: str) -> str:
        return f"{self.project}-{job_name}"

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": "ml2p-project", "Value": self.cfg["project"]}]


class ModellingSubCfg:
    """One section of ml2p.yml, falling back to ``defaults``."""

    def __init__(self, cfg: Mapping[str, Any], section: str, defaults: str = "defaults") -> None:
        self._defaults = cfg.get(defaults) or {}
        self._section = cfg.get(section) or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        if name in self._section:
            return self._section[name]
        return self._defaults[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._section[name] = value

    def keys(self) -> list[str]:
        return sorted(set(self._section) | set(self._defaults))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._section:
            return self._section[name]
        return self._defaults.get(name, default)


class S3URL:
    """A friendly interface to the project's folder URL (``s3://bucket/prefix``, any fsspec
    URL, or a local folder)."""

    def __init__(self, s3folder: str) -> None:
        self.s3folder = s3folder
        parts = urlsplit(s3folder)
        self._scheme = parts.scheme if len(parts.scheme) > 1 else ""  # not a drive letter
        self._bucket = parts.netloc if self._scheme else ""
        self._root = (parts.path if self._scheme else s3folder).strip("/")
        self._absolute = not self._scheme and s3folder.startswith("/")

    def bucket(self) -> str:
        """The bucket (host part) of the URL; empty for a local folder."""
        return self._bucket

    def path(self, suffix: str) -> str:
        """The base path followed by ``/`` and ``suffix``."""
        return (self._root + "/" + suffix.lstrip("/")).lstrip("/")

    def url(self, suffix: str = "") -> str:
        """The URL followed by ``/`` and ``suffix``."""
        if self._scheme:
            return f"{self._scheme}://{self._bucket}/{self.path(suffix)}"
        return ("/" if self._absolute else "") + self.path(suffix)

    def __repr__(self) -> str:
        return f"S3URL({self.s3folder!r})"


class SageMakerEnvType(enum.StrEnum):
    """Which job an environment is for (ML2P's names)."""

    TRAIN = "train"
    SERVE = "serve"
    DATASET = "dataset"
    LOCAL = "local"
    UNKNOWN = "unknown"


EnvType = SageMakerEnvType


class SageMakerEnv:
    """The environment of a SageMaker container, as ML2P describes it.

    Settings come from ``environ`` (a dict with ``env_type``, ``dataset_name``,
    ``training_job_name``, ``model_version``, ``record_invokes``, ``project``, ``model_cls``,
    ``s3_url``) or, by default, from the variables ML2P sets: ``ML2P_DATASET``,
    ``ML2P_TRAINING_JOB``, ``ML2P_MODEL_VERSION``, ``ML2P_RECORD_INVOKES`` (``true``),
    ``ML2P_PROJECT``, ``ML2P_MODEL_CLS``, ``ML2P_S3_URL``. Files live under ``ml_folder``
    (``/opt/ml`` in a container): ``input/data/<channel>``, ``input/config``, ``model``,
    ``output/failure``.
    """

    TRAIN = SageMakerEnvType.TRAIN
    SERVE = SageMakerEnvType.SERVE
    DATASET = SageMakerEnvType.DATASET
    LOCAL = SageMakerEnvType.LOCAL
    UNKNOWN = SageMakerEnvType.UNKNOWN

    def __init__(
        self, ml_folder: str | os.PathLike[str], environ: Mapping[str, Any] | None = None
    ) -> None:
        self._ml_folder = Path(ml_folder)
        if environ is None:
            environ = self._get_environ_variables()
        self.env_type = environ["env_type"]
        self.dataset_name = environ["dataset_name"]
        self.training_job_name = environ["training_job_name"]
        self.model_version = environ["model_version"]
        self.record_invokes = environ["record_invokes"]
        self.project = environ["project"]
        self.model_cls = environ["model_cls"]
        self.s3 = S3URL(environ["s3_url"]) if environ["s3_url"] else None

    def _get_environ_variables(self) -> dict[str, Any]:
        get = os.environ.get
        environ: dict[str, Any] = {
            "dataset_name": get("ML2P_DATASET") or None,
            "training_job_name": get("ML2P_TRAINING_JOB") or None,
            "model_version": get("ML2P_MODEL_VERSION") or None,
            "record_invokes": get("ML2P_RECORD_INVOKES", "false") == "true",
            "project": get("ML2P_PROJECT") or None,
            "model_cls": get("ML2P_MODEL_CLS") or None,
            "s3_url": get("ML2P_S3_URL") or None,
        }
        if environ["dataset_name"]:
            environ["env_type"] = self.DATASET
        elif environ["training_job_name"]:
            environ["env_type"] = self.TRAIN
        elif environ["model_version"]:
            environ["env_type"] = self.SERVE
        else:
            environ["env_type"] = self.UNKNOWN
        return environ

    def hyperparameters(self) -> dict[str, Any]:
        """``input/config/hyperparameters.json``, decoded as ML2P encodes it ({} if absent)."""
        from keel.compat.ml2p.hyperparameters import decode

        path = self._ml_folder / "input" / "config" / "hyperparameters.json"
        if not path.exists():
            return {}
        return decode(json.loads(path.read_text(encoding="utf-8")))

    def resourceconfig(self) -> dict[str, Any]:
        """``input/config/resourceconfig.json`` ({} if absent)."""
        path = self._ml_folder / "input" / "config" / "resourceconfig.json"
        if not path.exists():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def dataset_folder(self, dataset: str | None = None) -> Path:
        """The training dataset (``input/data/training``)."""
        if dataset is not None:
            import warnings

            warnings.warn(
                "Passing a dataset name to dataset_folder(...) is deprecated: use "
                "data_channel_folder(channel) for a channel's data.",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.data_channel_folder(dataset)
        return self.data_channel_folder("training")

    def data_channel_folder(self, channel: str) -> Path:
        """The files of one input channel (``input/data/<channel>``)."""
        return self._ml_folder / "input" / "data" / channel

    def model_folder(self) -> Path:
        """Where the trainer writes the model and the predictor reads it."""
        return self._ml_folder / "model"

    def write_failure(self, text: str) -> None:
        """Record why the job failed (``output/failure``, where SageMaker looks)."""
        target = self._ml_folder / "output" / "failure"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


class LocalEnv(SageMakerEnv):
    """A local stand-in for the SageMaker environment, configured by ml2p.yml.

    Args:
        ml_folder: an existing folder for ``input/data/training``, ``model`` and the rest.
        cfg: the path of the ml2p.yml.
        session: accepted for ML2P's signature; keel downloads from its own store
            (``KEEL_STORE``/``KEEL_ARTIFACTS``, else the store ml2p.yml's folder names).
    """

    def __init__(
        self, ml_folder: str | os.PathLike[str], cfg: str | os.PathLike[str], session: Any = None
    ) -> None:
        self._session = session
        self._cfg_path = Path(cfg)
        self._prj = ModellingProject(cfg)
        super().__init__(ml_folder, environ=self._local_environ())
        if not self._ml_folder.is_dir():
            raise LocalEnvError(f"Local environment folder {ml_folder} does not exist.")
        self.model_folder().mkdir(exist_ok=True)

    def _local_environ(self) -> dict[str, Any]:
        return {
            "env_type": self.LOCAL,
            "dataset_name": None,
            "training_job_name": None,
            "model_version": "local",
            "record_invokes": False,
            "project": self._prj.project,
            "model_cls": None,
            "s3_url": self._prj.cfg["s3folder"],
        }

    def clean_model_folder(self) -> None:
        """Remove and recreate the model folder (before training afresh)."""
        folder = self.model_folder()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def _client(self) -> Any:
        from keel.tracking.client import Client

        return Client(config=self._cfg_path)

    def download_dataset(self, dataset: str) -> None:
        """Copy a dataset registered in keel (``NAME`` or ``NAME@VERSION``) into
        ``input/data/training``."""
        name, _, version = dataset.partition("@")
        client = self._client()
        try:
            found = client.get_dataset(name, version or "latest")
            _copy_tree(client.get_dataset_files(found), self.dataset_folder())
        finally:
            client.close()

    def download_model(self, training_job: str) -> None:
        """Copy a trained model into the model folder: ``MODEL@VERSION`` (any keel
        reference), or the name of a training job (``keel ml2p training-job create``)."""
        from keel.lifecycle.artifact import FILES

        client = self._client()
        try:
            mv = _find_trained(client, self._prj, training_job)
            _copy_tree(client.get_model_artifact(mv) / FILES, self.model_folder())
        finally:
            client.close()


def _find_trained(client: Any, prj: ModellingProject, training_job: str) -> Any:
    """The model version ``training_job`` names: a keel reference, or a training job's alias."""
    from keel.errors import NotFound

    if "@" in training_job:
        return client.get_model_version(training_job)
    for model_type in prj.models:
        try:
            return client.get_model_version(f"{model_type}@{training_job}")
        except NotFound:
            continue
    known = ", ".join(prj.models) or "none in ml2p.yml"
    raise NotFound(
        f"no model trained by training job {training_job!r} (models: {known}): train it with "
        f"`keel ml2p training-job create {training_job} DATASET`, or give MODEL@VERSION"
    )


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, dirs_exist_ok=True)


class KeelEnv(SageMakerEnv):
    """The environment keel hands ML2P code: a :class:`SageMakerEnv` over keel's folders.

    ``model_folder()`` is the model version's files, ``dataset_folder()`` the dataset given
    to ``keel train --dataset`` (or the folder a generator fills); ``model_version`` is
    ``name@number`` while serving; ``record_invokes`` follows ``api.record_invokes``;
    ``ctx`` is keel's :class:`~keel.models.base.ModelContext` (``ctx.params`` and the rest).
    """

    def __init__(
        self,
        env_type: SageMakerEnvType,
        ctx: ModelContext,
        model_cls: str,
        artifact_root: str = "",
        training_job_name: str | None = None,
        record_invokes: bool = False,
    ) -> None:
        super().__init__(
            ctx.work_dir,
            environ={
                "env_type": env_type,
                "dataset_name": None,
                "training_job_name": training_job_name,
                "model_version": ctx.version or "local",
                "record_invokes": record_invokes,
                "project": ctx.project,
                "model_cls": model_cls,
                "s3_url": artifact_root or None,
            },
        )
        if self.s3 is None:
            self.s3 = S3URL("")
        self.ctx = ctx

    def dataset_folder(self, dataset: str | None = None) -> Path:
        """The dataset's files (training) or where a generator writes them."""
        if dataset is not None:
            return super().dataset_folder(dataset)
        folder = self.ctx.dataset_dir or (self.ctx.work_dir / "input" / "data" / "training")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def data_channel_folder(self, channel: str) -> Path:
        """``training`` is the dataset; another channel is that sub-folder of the dataset
        when it has one, else an empty scratch folder."""
        if channel == "training":
            return self.dataset_folder()
        inside = self.dataset_folder() / channel
        return inside if inside.is_dir() else super().data_channel_folder(channel)

    def model_folder(self) -> Path:
        return self.ctx.model_dir

    def clean_model_folder(self) -> None:
        """Empty the model folder before training."""
        folder = self.model_folder()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)

    def write_failure(self, text: str) -> None:
        """Record why the job failed: ``output/failure`` in the work folder, and the run's
        report item ``failure``."""
        super().write_failure(text)
        try:
            self.ctx.report("failure", text)
        except Exception:  # the report is a courtesy: the job fails either way
            self.ctx.logger.debug("could not add the failure to the report", exc_info=True)

    def record(self, datum: Any, prediction: Any, request_id: str) -> None:
        """Store one invocation record with keel's invocation records (the store the
        environment names: ``KEEL_STORE``, keel.yml or ml2p.yml)."""
        from keel.entities import InvocationRecord
        from keel.tracking.client import Client

        name, _, number = (self.ctx.version or "").partition("@")
        if not number.isdigit():
            return  # not a registered version (local code): nothing to file it under
        client = Client(project=self.ctx.project)
        try:
            client.log_invocations(
                f"{name}@{number}",
                [
                    InvocationRecord(
                        request_id=request_id,
                        model=name,
                        version=int(number),
                        timestamp=int(time.time() * 1000),
                        latency_ms=0.0,
                        status="ok",
                        resource="invoke",
                        input=datum,
                        result=prediction,
                    )
                ],
            )
        finally:
            client.close()


_LOG_HANDLER = "keel-ml2p"


def setup_logging() -> None:
    """Show model code's INFO logs (on stderr, once, so stdout stays the command's)."""
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not any(getattr(h, "name", None) == _LOG_HANDLER for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_LOG_HANDLER)
        handler.setLevel(logging.INFO)
        root.addHandler(handler)


def import_string(name: str) -> Any:
    """The class (or anything) named by its dotted path, e.g. ``package.module.Class``."""
    import importlib

    module_name, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


class _EnvBound:
    def __init__(self, env: SageMakerEnv) -> None:
        self.env = env
        self.setup_logging()

    def setup_logging(self) -> None:
        setup_logging()


class ModelDatasetGenerator(_EnvBound):
    """Generates a dataset into ``env.dataset_folder()``."""

    def generate(self) -> None:
        raise NotImplementedError("Sub-classes should implement .generate()")

    def upload_to_s3(self, file_path: str | os.PathLike[str]) -> None:
        """Add a file to the dataset (keel registers the folder when ``generate`` returns)."""
        source = Path(file_path)
        target = self.env.dataset_folder() / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or source.resolve() != target.resolve():
            shutil.copy2(source, target)


class ModelTrainer(_EnvBound):
    """Trains a model and writes it into ``env.model_folder()``."""

    def train(self) -> None:
        raise NotImplementedError("Sub-classes should implement .train()")


class ModelPredictor(_EnvBound):
    """Makes predictions with the model in ``env.model_folder()``."""

    def setup(self) -> None:
        """Called once before any prediction: load the model."""

    def teardown(self) -> None:
        """Called once after the last prediction."""

    def metadata(self) -> dict[str, Any]:
        """``{"model_version", "ml2p_version", "timestamp"}`` (UTC POSIX seconds)."""
        return {
            "model_version": self.env.model_version,
            "ml2p_version": ml2p_version,
            "timestamp": time.time(),
        }

    def result(self, data: Any) -> Any:
        raise NotImplementedError("Sub-classes should implement .result(...)")

    def batch_result(self, data: list[Any]) -> list[Any]:
        """One result per item; override to predict a batch at once."""
        return [self.result(datum) for datum in data]

    def invoke(self, data: Any) -> dict[str, Any]:
        """``{"metadata": self.metadata(), "result": self.result(data)}`` (recorded when
        ``env.record_invokes``)."""
        prediction = {"metadata": self.metadata(), "result": self.result(data)}
        if self.env.record_invokes:
            self.record_invoke(data, prediction)
        return prediction

    def batch_invoke(self, data: list[Any]) -> dict[str, Any]:
        """``{"predictions": [{"metadata": …, "result": r} for r in batch_result(data)]}``."""
        metadata = self.metadata()
        predictions = [{"metadata": metadata, "result": r} for r in self.batch_result(data)]
        if self.env.record_invokes:
            for datum, prediction in zip(data, predictions, strict=False):
                self.record_invoke(datum, prediction)
        return {"predictions": predictions}

    def record_invoke_id(self, datum: Any, prediction: Any) -> OrderedDict[str, str]:
        """``{"ts": <ISO 8601 UTC>, "uuid": <uuid4>}``, in that order."""
        return OrderedDict(default_invoke_id())

    def record_invoke(self, datum: Any, prediction: Any) -> None:
        """Store this invocation with keel's invocation records, under
        ``ts-…--uuid-…`` (or this predictor's ``record_invoke_id``)."""
        request_id = invoke_record_name(self.record_invoke_id(datum, prediction))
        record = getattr(self.env, "record", None)
        if callable(record):
            record(datum, prediction, request_id)


class Model:
    """Holds the ``DATASET_GENERATOR``, ``TRAINER`` and ``PREDICTOR`` classes."""

    __keel_adapter__ = "keel.compat.ml2p.core:adapt"

    DATASET_GENERATOR: type[ModelDatasetGenerator] | None = None
    TRAINER: type[ModelTrainer] | None = None
    PREDICTOR: type[ModelPredictor] | None = None

    def dataset_generator(self, env: SageMakerEnv) -> ModelDatasetGenerator:
        if self.DATASET_GENERATOR is None:
            raise ValueError(".DATASET_GENERATOR should be an instance of ModelDatasetGenerator")
        return self.DATASET_GENERATOR(env)

    def trainer(self, env: SageMakerEnv) -> ModelTrainer:
        if self.TRAINER is None:
            raise ValueError(".TRAINER should be an instance of ModelTrainer")
        return self.TRAINER(env)

    def predictor(self, env: SageMakerEnv) -> ModelPredictor:
        if self.PREDICTOR is None:
            raise ValueError(".PREDICTOR should be an instance of ModelPredictor")
        return self.PREDICTOR(env)


class Ml2pModel(Adapter):
    """keel's contract over an ML2P Model; the fitted model is the model folder."""

    style = "ml2p"

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    def _env(self, env_type: SageMakerEnvType, ctx: ModelContext) -> KeelEnv:
        return KeelEnv(
            env_type,
            ctx,
            f"{self.model.__module__}.{self.model.__qualname__}",
            artifact_root=ctx.artifact_root,
            training_job_name=ctx.run_id if env_type is SageMakerEnvType.TRAIN else None,
            record_invokes=ctx.record_invokes,
        )

    def _part(self, name: str, method: str) -> None:
        """Refuse a model with no ``name`` class (unless it builds the part itself)."""
        own = getattr(self.model, method, None) is not getattr(Model, method)
        if getattr(self.model, name, None) is None and not own:
            from keel.errors import InvalidInput

            raise InvalidInput(
                f"ML2P model {self.model.__name__} sets no {name} class: set it to your "
                f"Model{method.title().replace('_', '')} subclass"
            )

    def train(self, ctx: ModelContext) -> None:
        self._part("TRAINER", "trainer")
        env = self._env(SageMakerEnvType.TRAIN, ctx)
        try:
            self.model().trainer(env).train()
        except Exception:
            env.write_failure(traceback.format_exc())
            raise

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        self._part("TRAINER", "trainer")
        trainer = self.model().trainer(self._env(SageMakerEnvType.TRAIN, ctx))
        evaluate = getattr(trainer, "evaluate", None)
        return dict(evaluate() or {}) if callable(evaluate) else {}

    def generate_dataset(self, ctx: ModelContext) -> None:
        self._part("DATASET_GENERATOR", "dataset_generator")
        env = self._env(SageMakerEnvType.DATASET, ctx)
        try:
            self.model().dataset_generator(env).generate()
        except Exception:
            env.write_failure(traceback.format_exc())
            raise

    def _predictor(self, ctx: ModelContext) -> ModelPredictor:
        predictor = getattr(self, "_live_predictor", None)
        if predictor is None:
            self._part("PREDICTOR", "predictor")
            predictor = self.model().predictor(self._env(SageMakerEnvType.SERVE, ctx))
            predictor.setup()
            self._live_predictor = predictor
        return predictor

    def setup(self, ctx: ModelContext) -> None:
        self._predictor(ctx)

    def teardown(self, ctx: ModelContext) -> None:
        predictor = getattr(self, "_live_predictor", None)
        self._live_predictor = None
        if predictor is not None:
            predictor.teardown()

    def predict(self, ctx: ModelContext, fitted: Any, inputs: Any) -> Any:
        return self._predictor(ctx).result(inputs)

    def predict_batch(self, ctx: ModelContext, fitted: Any, batch: Any) -> Any:
        return self._predictor(ctx).batch_result(records(batch))

    def record_invoke_id(self, ctx: ModelContext, inputs: Any, result: Any) -> dict[str, str]:
        return dict(self._predictor(ctx).record_invoke_id(inputs, result))

    # --- the prediction API's answers, in ML2P's shapes -------------------------------------

    def metadata(self, ctx: ModelContext) -> dict[str, Any]:
        return self._predictor(ctx).metadata()

    def answer_metadata(self, ctx: ModelContext) -> dict[str, Any]:
        """The predictor's own ``metadata()``, as ML2P answers it."""
        return self.metadata(ctx)

    def answer_batch(self, ctx: ModelContext, results: list[Any], metadata: Any) -> Any:
        """``{"predictions": [{"metadata": …, "result": …}, …]}`` (ML2P's ``batch_invoke``)."""
        return {"predictions": [{"metadata": metadata, "result": r} for r in results]}

    def answer_ping(self, ctx: ModelContext) -> dict[str, Any]:
        """``{"model_version": …, "ml2p_version": …}``."""
        version = self._predictor(ctx).env.model_version
        return {"model_version": version, "ml2p_version": ml2p_version}

    def answer_error(self, ctx: ModelContext, exc: BaseException) -> tuple[int, Any] | None:
        """ML2P's :class:`~keel.compat.ml2p.errors.APIError` family: its status and
        ``{"message", "details"}``."""
        if isinstance(exc, APIError):
            return exc.status_code, exc.get_body()
        return None


def adapt(module: ModuleType, classes: list[type]) -> Ml2pModel:
    """keel's model over the ML2P ``Model`` subclass of ``module``."""
    if len(classes) > 1:
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise ConfigError(
            f"model.module {module.__name__}: several ML2P Model classes ({names}); "
            "name one with model.class (or, with ml2p.yml, pick one of its models: with "
            "`keel ml2p --model NAME`)"
        )
    return Ml2pModel(classes[0])
