"""ML2P-style model code on keel: change ``import ml2p.core`` to this module.

A :class:`Model` names its ``DATASET_GENERATOR``, ``TRAINER`` and ``PREDICTOR`` classes; each
is built with an environment object (:class:`KeelEnv`) that says where the dataset and
model folders are. The trainer writes the model into ``env.model_folder()``; keel stores
that folder as the model version and hands it back to the predictor's ``setup``. keel adds
one optional hook: a trainer ``evaluate()`` returning metrics, used after training and by
``keel retest``.
"""

from __future__ import annotations

import enum
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from keel.errors import ConfigError
from keel.models.adapter import Adapter
from keel.models.base import ModelContext, default_invoke_id, records
from keel.models.report import report

__all__ = [
    "S3URL",
    "KeelEnv",
    "Model",
    "ModelDatasetGenerator",
    "ModelPredictor",
    "ModelTrainer",
    "SageMakerEnvType",
    "report",
]


class SageMakerEnvType(enum.StrEnum):
    """Which job an environment is for (ML2P's names)."""

    DATASET = "dataset"
    TRAIN = "train"
    SERVE = "serve"
    LOCAL = "local"


EnvType = SageMakerEnvType


class S3URL:
    """A friendly interface to the artifact root URL (``s3://bucket/prefix`` or a folder)."""

    def __init__(self, s3folder: str) -> None:
        self.s3folder = s3folder.rstrip("/")
        parts = urlsplit(self.s3folder)
        self._bucket = parts.netloc
        self._base = parts.path.strip("/") if parts.scheme else self.s3folder.strip("/")

    def bucket(self) -> str:
        """The bucket (host part) of the URL; empty for a local folder."""
        return self._bucket

    def path(self, suffix: str) -> str:
        """The base path followed by ``/`` and ``suffix``."""
        return f"{self._base}/{suffix}" if self._base else suffix

    def url(self, suffix: str = "") -> str:
        """The URL followed by ``/`` and ``suffix``."""
        return f"{self.s3folder}/{suffix}"

    def __repr__(self) -> str:
        return f"S3URL({self.s3folder!r})"


class KeelEnv:
    """The environment ML2P code reads: what job this is and where its files are.

    Attributes:
        env_type: a :class:`SageMakerEnvType`.
        project: the keel project.
        model_cls: dotted name of the ML2P Model class.
        s3: the artifact store root as an :class:`S3URL`.
        training_job_name: the run id while training, else None.
        model_version: ``name@number`` while serving, ``"local"`` otherwise.
        record_invokes: whether the prediction API records invocations.
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
        self.env_type = env_type
        self.project = ctx.project
        self.model_cls = model_cls
        self.s3 = S3URL(artifact_root or "")
        self.training_job_name = training_job_name
        self.model_version = ctx.version or "local"
        self.record_invokes = record_invokes
        self.ctx = ctx

    def dataset_folder(self, dataset: str | None = None) -> Path:
        """The dataset's files (training) or where a generator writes them."""
        folder = self.ctx.dataset_dir or (self.ctx.work_dir / "dataset")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def model_folder(self) -> Path:
        """Where the trainer writes the model, and where the predictor reads it."""
        return self.ctx.model_dir

    def clean_model_folder(self) -> None:
        """Empty the model folder before training."""
        folder = self.model_folder()
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)


class _EnvBound:
    def __init__(self, env: KeelEnv) -> None:
        self.env = env


class ModelDatasetGenerator(_EnvBound):
    """Generates a dataset into ``env.dataset_folder()``."""

    def generate(self) -> None:
        raise NotImplementedError("implement generate() in your ModelDatasetGenerator")

    def upload_to_s3(self, file_path: str | Path) -> None:
        """Add a file to the dataset (keel uploads the folder when ``generate`` returns)."""
        source = Path(file_path)
        target = self.env.dataset_folder() / source.name
        if source.resolve() != target.resolve():
            shutil.copy2(source, target)


class ModelTrainer(_EnvBound):
    """Trains a model and writes it into ``env.model_folder()``."""

    def train(self) -> None:
        raise NotImplementedError("implement train() in your ModelTrainer")


class ModelPredictor(_EnvBound):
    """Makes predictions with the model in ``env.model_folder()``."""

    def setup(self) -> None:
        """Called once before any prediction: load the model."""

    def teardown(self) -> None:
        """Called once after the last prediction."""

    def metadata(self) -> dict[str, Any]:
        """``{"model_version": …, "timestamp": <UTC POSIX seconds>}``."""
        return {"model_version": self.env.model_version, "timestamp": time.time()}

    def result(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("implement result(data) in your ModelPredictor")

    def batch_result(self, data: list[Any]) -> list[Any]:
        """One result per item; override to predict a batch at once."""
        return [self.result(datum) for datum in data]

    def invoke(self, data: dict[str, Any]) -> dict[str, Any]:
        """``{"metadata": self.metadata(), "result": self.result(data)}``."""
        return {"metadata": self.metadata(), "result": self.result(data)}

    def batch_invoke(self, data: list[Any]) -> list[dict[str, Any]]:
        """``[{"metadata": …, "result": r} for r in self.batch_result(data)]``."""
        metadata = self.metadata()
        return [{"metadata": metadata, "result": r} for r in self.batch_result(data)]

    def record_invoke_id(self, datum: Any, prediction: Any) -> OrderedDict[str, str]:
        """``{"ts": <ISO 8601 UTC>, "uuid": <uuid4>}``, in that order."""
        return OrderedDict(default_invoke_id())


class Model:
    """Holds the ``DATASET_GENERATOR``, ``TRAINER`` and ``PREDICTOR`` classes."""

    __keel_adapter__ = "keel.compat.ml2p.core:adapt"

    DATASET_GENERATOR: type[ModelDatasetGenerator] | None = None
    TRAINER: type[ModelTrainer] | None = None
    PREDICTOR: type[ModelPredictor] | None = None


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

    def _part(self, name: str) -> type:
        part = getattr(self.model, name, None)
        if part is None:
            from keel.errors import InvalidInput

            raise InvalidInput(f"ML2P model {self.model.__name__} sets no {name} class")
        return part

    def train(self, ctx: ModelContext) -> None:
        self._part("TRAINER")(self._env(SageMakerEnvType.TRAIN, ctx)).train()

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        trainer = self._part("TRAINER")(self._env(SageMakerEnvType.TRAIN, ctx))
        evaluate = getattr(trainer, "evaluate", None)
        return dict(evaluate() or {}) if callable(evaluate) else {}

    def generate_dataset(self, ctx: ModelContext) -> None:
        self._part("DATASET_GENERATOR")(self._env(SageMakerEnvType.DATASET, ctx)).generate()

    def _predictor(self, ctx: ModelContext) -> ModelPredictor:
        predictor = getattr(self, "_live_predictor", None)
        if predictor is None:
            predictor = self._part("PREDICTOR")(self._env(SageMakerEnvType.SERVE, ctx))
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

    def metadata(self, ctx: ModelContext) -> dict[str, Any]:
        return self._predictor(ctx).metadata()


def adapt(module: ModuleType, classes: list[type]) -> Ml2pModel:
    """keel's model over the ML2P ``Model`` subclass of ``module``."""
    if len(classes) > 1:
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise ConfigError(
            f"model.module {module.__name__}: several ML2P Model classes ({names}); "
            "name one with model.class"
        )
    return Ml2pModel(classes[0])
