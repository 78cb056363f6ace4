"""The SageMaker requests ``keel sagemaker`` sends, built as ML2P builds them.

Each function returns the keyword arguments of one boto3 call (``create_training_job``,
``create_model``, ``create_endpoint_config``, ``create_endpoint``) with ML2P's shapes
(``ml2p/cli_commands/utils.py``: ``mk_training_job``, ``mk_model``,
``mk_endpoint_config``), plus what keel's container contract adds: ``KEEL_MODEL`` for
training, ``KEEL_MODEL_VERSION`` and ``SAGEMAKER_MODEL_SERVER_WORKERS`` for serving, the
run's hyperparameters, and the sizes ``sagemaker.train``/``deploy`` set. Pure functions:
nothing here talks to AWS.

Bucket layout (ML2P's): datasets under ``{bucket}/datasets/{dataset}``, training output
under ``{bucket}/models/``, so a job's model is
``{bucket}/models/{project}-{job}/output/model.tar.gz``.
"""

from __future__ import annotations

import json
from typing import Any

from keel.deploy.sagemaker_settings import SageMakerSettings

__all__ = [
    "dataset_url",
    "hyperparameters",
    "mk_endpoint",
    "mk_endpoint_config",
    "mk_model",
    "mk_training_job",
    "model_data_url",
]


def dataset_url(settings: SageMakerSettings, dataset: str) -> str:
    """Where a dataset's files are: ``{bucket}/datasets/{dataset}`` (no trailing ``/``,
    as ML2P's training channel has it)."""
    return settings.s3.url("/datasets/" + dataset)


def model_data_url(settings: SageMakerSettings, training_job: str) -> str:
    """Where SageMaker puts the model a training job made (its ``model.tar.gz``)."""
    full = settings.full_name(training_job)
    return settings.s3.url("/models") + "/" + full + "/output/model.tar.gz"


def hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """SageMaker's HyperParameters are strings: text as it is, anything else as JSON."""
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        for k, v in values.items()
    }


def mk_training_job(
    settings: SageMakerSettings,
    training_job: str,
    dataset: str,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``create_training_job``'s arguments: ML2P's, with keel's ``KEEL_MODEL`` and the
    hyperparameters (``sagemaker.train.hyperparameters`` updated with ``params``)."""
    action = f"create training job {training_job}"
    full = settings.full_name(training_job)
    env: dict[str, str] = {
        "ML2P_TRAINING_JOB": full,
        "ML2P_PROJECT": settings.project,
        "ML2P_S3_URL": settings.s3.url(),
    }
    if settings.model_cls:
        env["ML2P_MODEL_CLS"] = settings.model_cls
    if settings.keel_model:
        env["KEEL_MODEL"] = settings.keel_model
    extra: dict[str, Any] = {}
    hyper = hyperparameters({**settings.hyperparameters, **(params or {})})
    if hyper:
        extra["HyperParameters"] = hyper
    if settings.train.vpc_config is not None:
        extra["VpcConfig"] = settings.train.vpc_config
    return {
        "TrainingJobName": full,
        "AlgorithmSpecification": {
            "TrainingImage": settings.need(settings.train.image, "sagemaker.train.image", action),
            "TrainingInputMode": "File",
        },
        # training makes no network calls: its data comes in through the channel
        "EnableNetworkIsolation": True,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": dataset_url(settings, dataset),
                    }
                },
            }
        ],
        "Environment": env,
        "OutputDataConfig": {"S3OutputPath": settings.s3.url("/models/")},
        "ResourceConfig": {
            "InstanceCount": 1,
            "InstanceType": settings.need(
                settings.train.instance_type, "sagemaker.train.instance_type", action
            ),
            "VolumeSizeInGB": settings.volume_gb,
        },
        "RoleArn": settings.need(settings.train.role, "sagemaker.train.role", action),
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s},
        "Tags": settings.tags(),
        **extra,
    }


def mk_model(
    settings: SageMakerSettings,
    model_name: str,
    training_job: str,
    keel_version: str | None = None,
) -> dict[str, Any]:
    """``create_model``'s arguments: ML2P's, with ``KEEL_MODEL_VERSION`` (``name@N`` of the
    keel version the training job registered, when known) and the server's worker count."""
    action = f"create model {model_name}"
    full = settings.full_name(model_name)
    env: dict[str, str] = {
        "ML2P_MODEL_VERSION": full,
        "ML2P_PROJECT": settings.project,
        "ML2P_S3_URL": settings.s3.url(),
    }
    if settings.model_cls:
        env["ML2P_MODEL_CLS"] = settings.model_cls
    if settings.record_invokes:
        env["ML2P_RECORD_INVOKES"] = "true"
    if keel_version:
        env["KEEL_MODEL_VERSION"] = keel_version
    if settings.workers is not None:
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(settings.workers)
    extra: dict[str, Any] = {}
    if settings.deploy.vpc_config is not None:
        extra["VpcConfig"] = settings.deploy.vpc_config
    return {
        "ModelName": full,
        "PrimaryContainer": {
            "Image": settings.need(settings.deploy.image, "sagemaker.deploy.image", action),
            "ModelDataUrl": model_data_url(settings, training_job),
            "Environment": env,
        },
        "ExecutionRoleArn": settings.need(settings.deploy.role, "sagemaker.deploy.role", action),
        "Tags": settings.tags(),
        "EnableNetworkIsolation": False,
        **extra,
    }


def mk_endpoint_config(
    settings: SageMakerSettings, endpoint_name: str, model_name: str
) -> dict[str, Any]:
    """``create_endpoint_config``'s arguments (ML2P's: one variant serving the model)."""
    action = f"create endpoint {endpoint_name}"
    full_model = settings.full_name(model_name)
    return {
        "EndpointConfigName": settings.full_name(endpoint_name + "-config"),
        "ProductionVariants": [
            {
                "VariantName": full_model + "-variant-1",
                "ModelName": full_model,
                "InitialInstanceCount": settings.instance_count,
                "InstanceType": settings.need(
                    settings.deploy.instance_type, "sagemaker.deploy.instance_type", action
                ),
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": settings.tags(),
    }


def mk_endpoint(settings: SageMakerSettings, endpoint_name: str) -> dict[str, Any]:
    """``create_endpoint``'s arguments."""
    return {
        "EndpointName": settings.full_name(endpoint_name),
        "EndpointConfigName": settings.full_name(endpoint_name + "-config"),
        "Tags": settings.tags(),
    }
