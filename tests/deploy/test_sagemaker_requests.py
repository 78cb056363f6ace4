"""The SageMaker requests keel builds, checked against ML2P's own tests
(tests/cli_commands/test_utils.py of prodigyfinance/ml2p 0.6.0): an ml2p.yml gives ML2P's
requests exactly; keel.yml's ``sagemaker:`` gives the same shapes plus keel's contract.
No AWS here: these are pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import load_config, parse_config
from keel.deploy import sagemaker_requests as rq
from keel.deploy.sagemaker import SageMaker
from keel.deploy.sagemaker_settings import (
    model_name_for_endpoint,
    settings_from_config,
    training_job_name_for_model,
    validate_name,
)
from keel.errors import ConfigError, InvalidInput

# ML2P's tests/fixture_files/ml2p.yml (its notebook section is for ML2P's notebooks)
ML2P_YML = """\
project: "modelling-project"
s3folder: "s3://prodigyfinance-modelling-project-sagemaker-production/"
defaults:
  image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelling-project-sagemaker:latest"
  role: "arn:aws:iam::111111111111:role/modelling-project"
dataset:
  instance_type: "ml.m5.2xlarge"
train:
  instance_type: "ml.m5.2xlarge"
deploy:
  instance_type: "ml.t2.medium"
notebook:
  instance_type: "ml.t2.medium"
  volume_size: 8
  repo_url: "https://github.example.com/modelling-project"
  repo_branch: "main"
  security_group_ids:
    - "sg-1"
  subnet_id: "subnet-1"
"""
BUCKET = "s3://prodigyfinance-modelling-project-sagemaker-production/"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelling-project-sagemaker:latest"
ROLE = "arn:aws:iam::111111111111:role/modelling-project"
ML2P_TAGS = [{"Key": "ml2p-project", "Value": "modelling-project"}]


@pytest.fixture
def ml2p_settings(tmp_path: Path):
    (tmp_path / "ml2p.yml").write_text(ML2P_YML)
    return settings_from_config(load_config(tmp_path / "ml2p.yml"))


def test_an_ml2p_yml_gives_ml2p_training_job_request(ml2p_settings) -> None:
    # ML2P's test_mk_training_job, word for word
    assert rq.mk_training_job(ml2p_settings, "training-job-1", "dataset-1") == {
        "TrainingJobName": "modelling-project-training-job-1",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "EnableNetworkIsolation": True,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": BUCKET + "datasets/dataset-1",
                    }
                },
            }
        ],
        "Environment": {
            "ML2P_TRAINING_JOB": "modelling-project-training-job-1",
            "ML2P_PROJECT": "modelling-project",
            "ML2P_S3_URL": BUCKET,
        },
        "OutputDataConfig": {"S3OutputPath": BUCKET + "models/"},
        "ResourceConfig": {
            "InstanceCount": 1,
            "InstanceType": "ml.m5.2xlarge",
            "VolumeSizeInGB": 20,
        },
        "RoleArn": ROLE,
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": ML2P_TAGS,
    }


def test_an_ml2p_yml_gives_ml2p_model_and_endpoint_config_requests(ml2p_settings) -> None:
    assert rq.mk_model(ml2p_settings, "model-1", "training-job-1") == {
        "ModelName": "modelling-project-model-1",
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": BUCKET + "models/modelling-project-training-job-1/output/model.tar.gz",
            "Environment": {
                "ML2P_MODEL_VERSION": "modelling-project-model-1",
                "ML2P_PROJECT": "modelling-project",
                "ML2P_S3_URL": BUCKET,
            },
        },
        "ExecutionRoleArn": ROLE,
        "Tags": ML2P_TAGS,
        "EnableNetworkIsolation": False,
    }
    assert rq.mk_endpoint_config(ml2p_settings, "endpoint-1", "model-1") == {
        "EndpointConfigName": "modelling-project-endpoint-1-config",
        "ProductionVariants": [
            {
                "VariantName": "modelling-project-model-1-variant-1",
                "ModelName": "modelling-project-model-1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": ML2P_TAGS,
    }
    assert rq.mk_endpoint(ml2p_settings, "endpoint-1") == {
        "EndpointName": "modelling-project-endpoint-1",
        "EndpointConfigName": "modelling-project-endpoint-1-config",
        "Tags": ML2P_TAGS,
    }


def test_ml2p_model_types_vpc_and_record_invokes(tmp_path: Path, monkeypatch) -> None:
    text = ML2P_YML.replace(
        'deploy:\n  instance_type: "ml.t2.medium"\n',
        'deploy:\n  instance_type: "ml.t2.medium"\n  record_invokes: true\n'
        "  vpc_config: {security_groups: [sg-1], subnets: [net-2]}\n",
    )
    text += (
        "models:\n  model-type-1: my.pkg.model\n"
        "  model-type-2: {model-defaults: {cls: my.pkg.module.modeltwo}}\n"
    )
    (tmp_path / "ml2p.yml").write_text(text)
    monkeypatch.setenv("KEEL_ML2P_MODEL", "model-type-2")
    settings = settings_from_config(load_config(tmp_path / "ml2p.yml"))
    job = rq.mk_training_job(settings, "training-job-1", "dataset-1")
    # ML2P's test_mk_training_job_with_multimodel_cfg, plus keel's KEEL_MODEL
    assert job["Environment"] == {
        "ML2P_TRAINING_JOB": "modelling-project-training-job-1",
        "ML2P_PROJECT": "modelling-project",
        "ML2P_S3_URL": BUCKET,
        "ML2P_MODEL_CLS": "my.pkg.module.modeltwo",
        "KEEL_MODEL": "model-type-2",
    }
    assert "VpcConfig" not in job  # the deploy section's VPC is the model's only
    model = rq.mk_model(settings, "model-1", "training-job-1", keel_version="model-type-2@3")
    assert model["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["net-2"]}
    assert model["PrimaryContainer"]["Environment"] == {
        "ML2P_MODEL_VERSION": "modelling-project-model-1",
        "ML2P_PROJECT": "modelling-project",
        "ML2P_S3_URL": BUCKET,
        "ML2P_MODEL_CLS": "my.pkg.module.modeltwo",
        "ML2P_RECORD_INVOKES": "true",
        "KEEL_MODEL_VERSION": "model-type-2@3",
    }


@pytest.mark.parametrize(
    ("vpc", "message"),
    [
        ("5", "vpc_config needs the keys security_groups and subnets"),
        ("{subnets: [a]}", "vpc_config needs the keys security_groups and subnets"),
        ("{security_groups: 5, subnets: [a]}", "needs the keys security_groups"),
        ("{security_groups: [], subnets: [a]}", "at least one security group id"),
        ("{security_groups: [a], subnets: []}", "at least one subnet id"),
    ],
)
def test_ml2p_vpc_config_errors_name_the_line(tmp_path: Path, vpc: str, message: str) -> None:
    train = 'train:\n  instance_type: "ml.m5.2xlarge"\n'
    (tmp_path / "ml2p.yml").write_text(ML2P_YML.replace(train, train + f"  vpc_config: {vpc}\n"))
    with pytest.raises(ConfigError, match=message) as err:
        settings_from_config(load_config(tmp_path / "ml2p.yml"))
    assert "ml2p.yml line" in str(err.value)


KEEL_YML = """\
project: examples
model: {name: iris, module: iris_model}
sagemaker:
  bucket: s3://my-models/iris
  role: arn:aws:iam::123456789012:role/sagemaker
  image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1
  train: {instance_type: ml.m5.large, volume_gb: 5, max_runtime_s: 600,
          hyperparameters: {C: 1.0, solver: lbfgs}}
  deploy: {instance_type: ml.t2.medium, instance_count: 2, workers: 3,
           image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:serve}
  vpc_config: {security_groups: [sg-1], subnets: [net-1]}
  tags: {team: ml}
"""


def test_keel_yml_gives_the_same_shapes_with_keels_contract() -> None:
    settings = settings_from_config(parse_config(KEEL_YML))
    assert settings.project == "iris"  # the model's name, when sagemaker.project is unset
    job = rq.mk_training_job(settings, "iris-1-0", "iris-20240131", {"C": 0.5})
    tags = [{"Key": "keel-project", "Value": "iris"}, {"Key": "team", "Value": "ml"}]
    vpc = {"SecurityGroupIds": ["sg-1"], "Subnets": ["net-1"]}
    assert job == {
        "TrainingJobName": "iris-iris-1-0",
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1",
            "TrainingInputMode": "File",
        },
        "EnableNetworkIsolation": True,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://my-models/iris/datasets/iris-20240131",
                    }
                },
            }
        ],
        "Environment": {
            "ML2P_TRAINING_JOB": "iris-iris-1-0",
            "ML2P_PROJECT": "iris",
            "ML2P_S3_URL": "s3://my-models/iris/",
            "KEEL_MODEL": "iris",
        },
        "OutputDataConfig": {"S3OutputPath": "s3://my-models/iris/models/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Tags": tags,
        "HyperParameters": {"C": "0.5", "solver": "lbfgs"},
        "VpcConfig": vpc,
    }
    model = rq.mk_model(settings, "iris-1-0-0", "iris-1-0", "iris@4")
    assert model["PrimaryContainer"] == {
        "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:serve",
        "ModelDataUrl": "s3://my-models/iris/models/iris-iris-1-0/output/model.tar.gz",
        "Environment": {
            "ML2P_MODEL_VERSION": "iris-iris-1-0-0",
            "ML2P_PROJECT": "iris",
            "ML2P_S3_URL": "s3://my-models/iris/",
            "KEEL_MODEL_VERSION": "iris@4",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        },
    }
    assert model["VpcConfig"] == vpc and model["Tags"] == tags
    config = rq.mk_endpoint_config(settings, "iris-1-0-0-live", "iris-1-0-0")
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2


def test_sagemaker_project_wins_over_the_model_name() -> None:
    settings = settings_from_config(
        parse_config(KEEL_YML.replace("  tags:", "  project: flowers\n  tags:"))
    )
    assert rq.mk_endpoint(settings, "iris-1-0-0-live")["EndpointName"] == "flowers-iris-1-0-0-live"


@pytest.mark.parametrize(
    ("name", "resource"),
    [
        ("ds-20201012", "dataset"),
        ("my-model-0-1", "training-job"),
        ("my-model-0-1-dev", "training-job"),
        ("my-model-0-1-12", "model"),
        ("my-model-0-1-12-dev", "model"),
        ("my-model-0-1-12", "endpoint"),
        ("my-model-0-1-12-dev-live", "endpoint"),
        ("my-model-0-1-12-analysis", "endpoint"),
        ("my-model-0-1-12-test", "endpoint"),
    ],
)
def test_ml2p_names_pass(name: str, resource: str) -> None:
    assert validate_name(name, resource) == name


@pytest.mark.parametrize(
    ("name", "resource", "shape"),
    [
        ("ds-2020101", "dataset", "<model-name>-YYYYMMDD"),
        ("ds_20201012", "dataset", "<model-name>-YYYYMMDD"),
        ("my-model-0", "training-job", "<model-name>-X-Y[-dev]"),
        ("my-model-0-1-prod", "training-job", "<model-name>-X-Y[-dev]"),
        ("my-model-0-1", "model", "<model-name>-X-Y-Z[-dev]"),
        ("my-model-0-1-12-live", "model", "<model-name>-X-Y-Z[-dev]"),
        ("my-model-0-1-12-prod", "endpoint", "[-live|-analysis|-test]"),
    ],
)
def test_names_ml2p_refuses_say_the_format(name: str, resource: str, shape: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_name(name, resource)
    assert repr(name) in str(err.value) and shape in str(err.value)


def test_ml2p_default_names() -> None:
    assert training_job_name_for_model("my-model-0-1-12") == "my-model-0-1"
    assert training_job_name_for_model("my-model-0-1-12-dev") == "my-model-0-1"
    assert model_name_for_endpoint("my-model-0-1-12-live") == "my-model-0-1-12"
    assert model_name_for_endpoint("my-model-0-1-12-dev-test") == "my-model-0-1-12-dev"
    with pytest.raises(InvalidInput, match="model names have the format"):
        training_job_name_for_model("my-model")


def test_a_name_too_long_for_sagemaker_is_refused_before_sending() -> None:
    settings = settings_from_config(parse_config(KEEL_YML))
    api = SageMaker(settings)
    with pytest.raises(InvalidInput, match=r"not a SageMaker name .*at most 63"):
        api.training_job_request("a" * 60 + "-1-0", "iris-20240131")


@pytest.mark.parametrize(
    ("drop", "key"),
    [
        ("  image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1\n", "sagemaker.train.image"),
        ("  role: arn:aws:iam::123456789012:role/sagemaker\n", "sagemaker.train.role"),
        ("  train: {instance_type: ml.m5.large, ", "sagemaker.train.instance_type"),
    ],
)
def test_a_missing_setting_names_its_key_and_what_needs_it(drop: str, key: str) -> None:
    text = KEEL_YML.replace(drop, "  train: {" if drop.startswith("  train") else "")
    settings = settings_from_config(parse_config(text))
    with pytest.raises(ConfigError) as err:
        SageMaker(settings).training_job_request("iris-1-0", "iris-20240131")
    assert f"{key} is not set; it is needed to create training job iris-1-0" in str(err.value)
    assert "line 3" in str(err.value)  # where the sagemaker: section is


def test_no_sagemaker_section_says_how_to_add_one() -> None:
    with pytest.raises(ConfigError, match="has no sagemaker: section: keel sagemaker needs one"):
        settings_from_config(parse_config("model: {name: iris, module: m}\n"))
    with pytest.raises(ConfigError, match=r"sagemaker.bucket: expected an S3 folder s3://BUCKET"):
        parse_config("sagemaker: {bucket: my-models}\n")


def test_without_boto3_keel_sagemaker_says_how_to_get_it(monkeypatch) -> None:
    import sys

    from keel.deploy.sagemaker import SageMaker
    from keel.errors import ConfigError

    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError
    api = SageMaker.from_config(parse_config(KEEL_YML))
    with pytest.raises(ConfigError, match=r"needs boto3.*pip install 'keel\[aws\]'"):
        api.aws("sagemaker")
