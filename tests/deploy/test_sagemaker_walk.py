"""``keel sagemaker`` against a moto server (S3, SageMaker, sagemaker-runtime): the walk
dataset → training job → model → endpoint → invoke from keel.yml, what boto3 sends on each
step, where datasets and model.tar.gz land, and the lineage in keel's store.

moto completes a training job at once and writes no model: the test plays SageMaker, running
the image's ``train`` code (:func:`keel.deploy.contract.train`) on the job's hyperparameters
and channels and putting the model.tar.gz it leaves where SageMaker would.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.cli import main

pytestmark = pytest.mark.s3

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUCKET = "keel-sm-test"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris:1"
ACCOUNT_ARN = "arn:aws:sagemaker:us-east-1:123456789012"


@dataclass(frozen=True)
class TrainedModel:
    """A model.tar.gz as keel's training container writes it."""

    tar_gz: bytes
    content_hash: str
    metrics: dict[str, Any]


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def play_training_job(s3: Any, job: dict[str, Any], work: Path) -> TrainedModel:
    """Do what SageMaker does with a training job, with keel's real entrypoint code: fill an
    /opt/ml folder from the job (hyperparameters.json, each channel's S3 objects), run the
    image's ``train`` on the iris project, and upload /opt/ml/model as model.tar.gz where the
    job's output path says."""
    from keel.deploy.contract import MlFolder, train

    project = work / "image-project"  # the image's /opt/keel/project
    shutil.copytree(EXAMPLES / "iris", project, ignore=shutil.ignore_patterns(".keel", "output"))
    ml = MlFolder(work / "opt-ml")
    ml.hyperparameters.parent.mkdir(parents=True)
    ml.hyperparameters.write_text(json.dumps(job.get("HyperParameters", {})))
    for channel in job["InputDataConfig"]:
        bucket, prefix = _key_of(channel["DataSource"]["S3DataSource"]["S3Uri"])
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
            target = ml.data / channel["ChannelName"] / item["Key"][len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    # moto keeps no Environment of a job (the exact request test checks what is sent)
    environ = {**job.get("Environment", {}), "TRAINING_JOB_NAME": job["TrainingJobName"]}
    try:
        outcome = train(ml, project, environ)
    finally:
        sys.modules.pop("iris_model", None)
    tar_gz = _tar_gz(ml.model)
    output = job["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    bucket, key = _key_of(f"{output}/{job['TrainingJobName']}/output/model.tar.gz")
    s3.put_object(Bucket=bucket, Key=key, Body=tar_gz)
    return TrainedModel(tar_gz, outcome.info.content_hash, outcome.info.metrics)


def keel_yml(endpoint: str) -> str:
    return f"""\
project: examples
model: {{name: iris, module: iris_model}}
sagemaker:
  bucket: s3://{BUCKET}/iris
  role: {ROLE}
  image: {IMAGE}
  region: us-east-1
  endpoint_url: {endpoint}
  train: {{instance_type: ml.m5.large, hyperparameters: {{max_iter: 500}}}}
  deploy: {{instance_type: ml.t2.medium, record_invokes: true}}
  tags: {{team: ml}}
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def keel_ok(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """``keel ARGV`` in this process; its JSON output (a list for several documents)."""
    code, out, err = _run(list(argv), capsys)
    assert code == 0, f"keel {' '.join(argv)}: exit {code}\n{err}"
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(out.strip()):
        value, end = decoder.raw_decode(out.strip(), at)
        found.append(value)
        at = end + 1
    return found[0] if len(found) == 1 else found


def keel_fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """``keel ARGV`` fails with one error line and no traceback; that line."""
    code, out, err = _run(list(argv), capsys)
    assert code != 0, f"keel {' '.join(argv)} succeeded\n{out}"
    assert "Traceback" not in err + out and "rerun with -v" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _key_of(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://") :].partition("/")
    return bucket, key


def test_the_walk_from_dataset_to_invoke(
    aws_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keel.tracking.client import Client

    s3, sm = aws_server.client("s3"), aws_server.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    (tmp_path / "keel.yml").write_text(keel_yml(aws_server.endpoint))
    data = tmp_path / "iris_train.csv"
    shutil.copyfile(EXAMPLES / "iris" / "data" / "iris_train.csv", data)

    # datasets: where SageMaker's training channel reads them
    keel_ok(capsys, "sagemaker", "dataset", "create", "iris-20240131")
    up = keel_ok(capsys, "sagemaker", "dataset", "up", "iris-20240131", str(data), "train.csv")
    assert up["S3Uri"] == f"s3://{BUCKET}/iris/datasets/iris-20240131/train.csv"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [
        "iris/datasets/iris-20240131/README.rst",
        "iris/datasets/iris-20240131/train.csv",
    ]
    stored = s3.get_object(Bucket=BUCKET, Key="iris/datasets/iris-20240131/train.csv")
    assert stored["Body"].read() == data.read_bytes()
    readme = s3.get_object(Bucket=BUCKET, Key="iris/datasets/iris-20240131/README.rst")
    assert readme["Body"].read() == b"Dataset iris-20240131 for project iris."
    assert keel_ok(capsys, "sagemaker", "dataset", "list", "--json") == "iris-20240131"
    assert keel_ok(capsys, "sagemaker", "dataset", "ls", "iris-20240131", "--json") == [
        {"filename": "README.rst", "size": 39},
        {"filename": "train.csv", "size": data.stat().st_size},
    ]

    # training job: a SageMaker job and a keel run
    created = keel_ok(
        capsys, "sagemaker", "training-job", "create", "iris-1-0", "iris-20240131", "-p", "C=0.5"
    )
    assert created["TrainingJobArn"] == f"{ACCOUNT_ARN}:training-job/iris-iris-1-0"
    described = sm.describe_training_job(TrainingJobName="iris-iris-1-0")
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{BUCKET}/iris/datasets/iris-20240131"
    )
    assert described["HyperParameters"] == {"max_iter": "500", "C": "0.5"}
    assert described["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/iris/models/"}
    client = Client(store=str(tmp_path / ".keel"), config=str(tmp_path / "keel.yml"))
    run = client.get_run(created["KeelRunId"])
    assert run.status == "running" and run.kind == "train"
    assert run.params == {"max_iter": "500", "C": "0.5"}
    assert run.tags["sagemaker_training_job"] == "iris-iris-1-0"
    assert run.tags["sagemaker_training_job_arn"] == created["TrainingJobArn"]
    assert run.tags["sagemaker_dataset"] == f"s3://{BUCKET}/iris/datasets/iris-20240131"

    # the training container's output, where SageMaker puts it (moto runs no container:
    # the test runs the image's entrypoint code on the job as SageMaker would)
    model_url = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_url == f"s3://{BUCKET}/iris/models/iris-iris-1-0/output/model.tar.gz"
    trained_iris = play_training_job(s3, described, tmp_path / "sagemaker")
    assert s3.get_object(Bucket=BUCKET, Key=_key_of(model_url)[1])["Body"].read() == (
        trained_iris.tar_gz
    )

    waited = keel_ok(capsys, "sagemaker", "training-job", "wait", "iris-1-0", "--delay", "0")
    assert waited["TrainingJobStatus"] == "Completed"
    assert waited["Keel"] == {"RunId": run.id, "ModelVersion": "iris@1"}
    run = client.get_run(run.id)
    assert run.status == "finished"
    assert run.metrics["train:progress"] == 100.0  # SageMaker's final metric (moto's)
    for key, value in trained_iris.metrics.items():  # and what the container measured
        assert run.metrics[key] == pytest.approx(value)
    assert run.tags["keel_model_version"] == "iris@1"
    version = client.get_model_version("iris@1")
    assert version.content_hash == trained_iris.content_hash  # the same bytes, checked
    assert version.run_id == run.id
    assert version.tags["sagemaker_training_job"] == "iris-iris-1-0"
    # describing again changes nothing: the version is registered once
    again = keel_ok(capsys, "sagemaker", "training-job", "describe", "iris-1-0")
    assert again["Keel"] == {"RunId": run.id, "ModelVersion": "iris@1"}
    assert len(client.find_model_versions({"model.name": "iris"})) == 1

    # model: serves that model.tar.gz and knows its keel version
    made = keel_ok(capsys, "sagemaker", "model", "create", "iris-1-0-0")
    assert made["ModelArn"] == f"{ACCOUNT_ARN}:model/iris-iris-1-0-0"
    container = sm.describe_model(ModelName="iris-iris-1-0-0")["PrimaryContainer"]
    assert container["ModelDataUrl"] == model_url
    assert container["Image"] == IMAGE
    assert container["Environment"] == {
        "ML2P_MODEL_VERSION": "iris-iris-1-0-0",
        "ML2P_PROJECT": "iris",
        "ML2P_S3_URL": f"s3://{BUCKET}/iris/",
        "ML2P_RECORD_INVOKES": "true",
        "KEEL_MODEL_VERSION": "iris@1",
    }
    version = client.get_model_version("iris@1")
    assert version.tags["sagemaker_model"] == "iris-iris-1-0-0"
    assert version.tags["sagemaker_model_arn"] == made["ModelArn"]

    # endpoint
    endpoint = keel_ok(capsys, "sagemaker", "endpoint", "create", "iris-1-0-0-live")
    assert endpoint["EndpointArn"] == f"{ACCOUNT_ARN}:endpoint/iris-iris-1-0-0-live"
    assert endpoint["Keel"] == {"ModelVersion": "iris@1"}
    config = sm.describe_endpoint_config(EndpointConfigName="iris-iris-1-0-0-live-config")
    assert config["ProductionVariants"][0]["ModelName"] == "iris-iris-1-0-0"
    ready = keel_ok(capsys, "sagemaker", "endpoint", "wait", "iris-1-0-0-live", "--delay", "0")
    assert ready["EndpointStatus"] == "InService"
    assert ready["EndpointUrl"] == (
        "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/iris-iris-1-0-0-live/invocations"
    )
    version = client.get_model_version("iris@1")
    assert version.tags["sagemaker_endpoint"] == "iris-iris-1-0-0-live"
    page = _version_page(tmp_path / ".keel")  # the web UI says what was deployed where
    for shown in ("iris-iris-1-0", "iris-iris-1-0-0", "iris-iris-1-0-0-live", run.id):
        assert shown in page
    listed = keel_ok(capsys, "sagemaker", "endpoint", "list", "--json")
    assert listed["EndpointName"] == "iris-iris-1-0-0-live"

    # invoke: what the serving container would answer (moto's canned result)
    answer = {"metadata": {"model_version": "iris-iris-1-0-0"}, "result": {"species": "setosa"}}
    aws_server.queue_invoke_results(
        {
            "Body": json.dumps(answer),
            "ContentType": "application/json",
            "InvokedProductionVariant": "iris-iris-1-0-0-variant-1",
            "CustomAttributes": "",
        }
    )
    row = (EXAMPLES / "iris" / "input.json").read_text()
    invoked = keel_ok(capsys, "sagemaker", "endpoint", "invoke", "iris-1-0-0-live", row)
    assert invoked["Body"] == answer
    assert invoked["ContentType"] == "application/json"
    assert invoked["InvokedProductionVariant"] == "iris-iris-1-0-0-variant-1"

    # delete: endpoint and config gone, the version says it was served there
    deleted = keel_ok(capsys, "sagemaker", "endpoint", "delete", "iris-1-0-0-live")
    assert [d["ResponseMetadata"]["HTTPStatusCode"] for d in deleted] == [200, 200]
    assert sm.list_endpoints()["Endpoints"] == []
    version = client.get_model_version("iris@1")
    assert version.tags["sagemaker_endpoint_deleted"] == "iris-iris-1-0-0-live"
    client.close()


def _version_page(store: Path) -> str:
    """The web UI's page of iris version 1, as a viewer sees it."""
    import re

    from fastapi.testclient import TestClient

    from keel.server.app import create_app
    from keel.server.settings import ServerSettings

    app = create_app(ServerSettings(store=str(store)))
    app.state.accounts.add_user("vera", "correct-horse", "viewer")
    try:
        with TestClient(app) as http:
            token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text)
            assert token
            http.post(
                "/login",
                data={"name": "vera", "password": "correct-horse", "csrf_token": token[1]},
                follow_redirects=False,
            )
            page = http.get("/projects/examples/models/iris/v/1")
            assert page.status_code == 200, page.text
            return page.text
    finally:
        app.state.client.close()


def _bytes(body: Any) -> bytes | None:
    """A request body as bytes (botocore sends bytes, text or a stream it rewinds)."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    at = body.tell()
    data = body.read()
    body.seek(at)
    return data


def _capture(api: Any, service: str) -> list[dict[str, Any]]:
    """Every HTTP request the API's boto3 client of ``service`` sends, as sent."""
    sent: list[dict[str, Any]] = []

    def record(request: Any, **_: Any) -> None:
        body = request.body
        sent.append(
            {
                "method": request.method,
                "url": request.url,
                "headers": {
                    k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()
                },
                "body": _bytes(body),
            }
        )

    api.aws(service).meta.events.register("before-send", record)
    return sent


def test_the_exact_requests_boto3_sends(aws_server, tmp_path: Path) -> None:
    from keel.config import parse_config
    from keel.deploy.sagemaker import SageMaker

    aws_server.client("s3").create_bucket(Bucket=BUCKET)
    api = SageMaker.from_config(parse_config(keel_yml(aws_server.endpoint)))
    s3_sent, sm_sent = _capture(api, "s3"), _capture(api, "sagemaker")
    runtime_sent = _capture(api, "sagemaker-runtime")

    api.create_dataset("iris-20240131")
    assert [(r["method"], r["url"]) for r in s3_sent] == [
        ("PUT", f"{aws_server.endpoint}/{BUCKET}/iris/datasets/iris-20240131/README.rst")
    ]
    assert s3_sent[0]["body"] == b"Dataset iris-20240131 for project iris."

    api.create_training_job("iris-1-0", "iris-20240131")
    (job_call,) = sm_sent
    assert job_call["headers"]["X-Amz-Target"] == "SageMaker.CreateTrainingJob"
    assert job_call["headers"]["Content-Type"] == "application/x-amz-json-1.1"
    tags = [{"Key": "keel-project", "Value": "iris"}, {"Key": "team", "Value": "ml"}]
    assert json.loads(job_call["body"]) == {
        "TrainingJobName": "iris-iris-1-0",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "EnableNetworkIsolation": True,
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/iris/datasets/iris-20240131",
                    }
                },
            }
        ],
        "Environment": {
            "ML2P_TRAINING_JOB": "iris-iris-1-0",
            "ML2P_PROJECT": "iris",
            "ML2P_S3_URL": f"s3://{BUCKET}/iris/",
            "KEEL_MODEL": "iris",
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/iris/models/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20},
        "RoleArn": ROLE,
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": tags,
        "HyperParameters": {"max_iter": "500"},
    }

    sm_sent.clear()
    api.create_model("iris-1-0-0")  # no keel client: no lineage, no KEEL_MODEL_VERSION
    assert [r["headers"]["X-Amz-Target"] for r in sm_sent] == ["SageMaker.CreateModel"]
    assert json.loads(sm_sent[0]["body"]) == {
        "ModelName": "iris-iris-1-0-0",
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/iris/models/iris-iris-1-0/output/model.tar.gz",
            "Environment": {
                "ML2P_MODEL_VERSION": "iris-iris-1-0-0",
                "ML2P_PROJECT": "iris",
                "ML2P_S3_URL": f"s3://{BUCKET}/iris/",
                "ML2P_RECORD_INVOKES": "true",
            },
        },
        "ExecutionRoleArn": ROLE,
        "Tags": tags,
        "EnableNetworkIsolation": False,
    }

    sm_sent.clear()
    api.create_endpoint("iris-1-0-0-live")
    assert [r["headers"]["X-Amz-Target"] for r in sm_sent] == [
        "SageMaker.CreateEndpointConfig",
        "SageMaker.CreateEndpoint",
    ]
    assert json.loads(sm_sent[0]["body"]) == {
        "EndpointConfigName": "iris-iris-1-0-0-live-config",
        "ProductionVariants": [
            {
                "VariantName": "iris-iris-1-0-0-variant-1",
                "ModelName": "iris-iris-1-0-0",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.t2.medium",
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": tags,
    }
    assert json.loads(sm_sent[1]["body"]) == {
        "EndpointName": "iris-iris-1-0-0-live",
        "EndpointConfigName": "iris-iris-1-0-0-live-config",
        "Tags": tags,
    }

    body = '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
    answer = api.invoke_endpoint("iris-1-0-0-live", body)
    (call,) = runtime_sent
    assert (call["method"], call["url"]) == (
        "POST",
        f"{aws_server.endpoint}/endpoints/iris-iris-1-0-0-live/invocations",
    )
    assert call["body"] == body.encode()
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["headers"]["Accept"] == "application/json"
    assert answer["Body"] == "body"  # moto's default answer is not JSON: kept as text


def test_an_ml2p_project_runs_unchanged_with_aws_endpoint_url(
    aws_server, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ML2P's own CLI tests' project (my-models in s3://my-bucket/my-models/), its ml2p.yml
    as it is; botocore's AWS_ENDPOINT_URL points every client at moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_server.endpoint)
    monkeypatch.setenv("KEEL_ARTIFACTS", str(tmp_path / "artifacts"))  # not the s3folder
    s3 = aws_server.client("s3")
    s3.create_bucket(Bucket="my-bucket")
    (tmp_path / "ml2p.yml").write_text(
        "project: my-models\ns3folder: s3://my-bucket/my-models/\n"
        "defaults:\n  image: 12345.dkr.ecr.us-east-1.amazonaws.com/docker-image:0.0.2\n"
        "  role: arn:aws:iam::12345:role/role-name\n"
        "train: {instance_type: ml.m5.large}\ndeploy: {instance_type: ml.t2.medium}\n"
    )
    (tmp_path / "training_set.csv").write_text('X1,X2,X3,y\n"A",1,10.5,1\n"B",2,7.4,0\n')
    assert _run(["sagemaker", "dataset", "create", "ds-20201012"], capsys)[0] == 0
    assert _run(["sagemaker", "dataset", "up", "ds-20201012", "training_set.csv"], capsys)[0] == 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="my-bucket")["Contents"]]
    assert keys == [
        "my-models/datasets/ds-20201012/README.rst",
        "my-models/datasets/ds-20201012/training_set.csv",
    ]
    created = keel_ok(capsys, "sagemaker", "training-job", "create", "tj-0-1-11", "ds-20201012")
    assert created["TrainingJobArn"] == f"{ACCOUNT_ARN}:training-job/my-models-tj-0-1-11"
    listed = keel_ok(capsys, "sagemaker", "training-job", "list", "--json")
    assert listed["TrainingJobName"] == "my-models-tj-0-1-11"
    assert listed["TrainingJobStatus"] == "Completed"
    # ML2P's test_create_and_list of models: a model needs no training job keel knows
    made = keel_ok(capsys, "sagemaker", "model", "create", "mdl-0-1-12")
    assert made["ModelArn"] == f"{ACCOUNT_ARN}:model/my-models-mdl-0-1-12"
    assert "Keel" not in made
    described = keel_ok(capsys, "sagemaker", "model", "describe", "mdl-0-1-12")
    assert (
        described["PrimaryContainer"]["Image"]
        == "12345.dkr.ecr.us-east-1.amazonaws.com/docker-image:0.0.2"
    )
    assert described["ExecutionRoleArn"] == "arn:aws:iam::12345:role/role-name"
    assert described["PrimaryContainer"]["Environment"] == {
        "ML2P_MODEL_VERSION": "my-models-mdl-0-1-12",
        "ML2P_PROJECT": "my-models",
        "ML2P_S3_URL": "s3://my-bucket/my-models/",
    }
    keel_ok(capsys, "sagemaker", "model", "create", "endpoint-0-1-12")
    keel_ok(capsys, "sagemaker", "endpoint", "create", "endpoint-0-1-12")
    listed = keel_ok(capsys, "sagemaker", "endpoint", "list", "--json")
    assert listed["EndpointName"] == "my-models-endpoint-0-1-12"
    assert listed["EndpointStatus"] == "InService"
    tags = aws_server.client("sagemaker").list_tags(ResourceArn=listed["EndpointArn"])["Tags"]
    assert tags == [{"Key": "ml2p-project", "Value": "my-models"}]


def test_a_job_without_keel_model_json_registers_its_folder(
    aws_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ML2P container writes its own files to /opt/ml/model: they become the version."""
    from keel.tracking.client import Client

    s3 = aws_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    (tmp_path / "keel.yml").write_text(keel_yml(aws_server.endpoint))
    s3.put_object(Bucket=BUCKET, Key="iris/datasets/iris-20240131/a.csv", Body=b"x\n1\n")
    keel_ok(capsys, "sagemaker", "training-job", "create", "iris-2-0", "iris-20240131")
    folder = tmp_path / "opt-ml-model"
    folder.mkdir()
    (folder / "model.json").write_text('{"weights": [1, 2]}')
    s3.put_object(
        Bucket=BUCKET, Key="iris/models/iris-iris-2-0/output/model.tar.gz", Body=_tar_gz(folder)
    )
    described = keel_ok(capsys, "sagemaker", "training-job", "describe", "iris-2-0")
    assert described["Keel"]["ModelVersion"] == "iris@1"
    client = Client(store=str(tmp_path / ".keel"), config=str(tmp_path / "keel.yml"))
    files = [f.path for f in client.get_model_version("iris@1").list_artifacts()]
    assert [Path(f).name for f in files] == ["model.json"]
    client.close()


def test_mistakes_answer_in_one_line(
    aws_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    (tmp_path / "keel.yml").write_text(keel_yml(aws_server.endpoint))
    line = keel_fails(capsys, "sagemaker", "dataset", "create", "iris")
    assert line == (
        "error: dataset name 'iris': dataset names have the format <model-name>-YYYYMMDD, "
        "e.g. iris-20240131 (ML2P's naming)"
    )
    line = keel_fails(capsys, "sagemaker", "training-job", "create", "iris-1", "iris-20240131")
    assert "training job names have the format <model-name>-X-Y[-dev]" in line
    line = keel_fails(capsys, "sagemaker", "training-job", "create", "iris-1-0", "iris-20240131")
    assert line == (
        f"error: dataset iris-20240131 has no files at s3://{BUCKET}/iris/datasets/iris-20240131/: "
        "upload some with `keel sagemaker dataset up iris-20240131 FILE`"
    )
    assert sm_jobs(aws_server) == []  # refused before anything started
    line = keel_fails(capsys, "sagemaker", "training-job", "describe", "iris-9-9")
    assert line.startswith("error: sagemaker describe_training_job: ValidationException: ")
    assert "iris-iris-9-9" in line
    line = keel_fails(capsys, "sagemaker", "endpoint", "invoke", "iris-1-0-0-live", "{bad")
    assert line.startswith("error: JSON_DATA is not valid JSON")
    line = keel_fails(capsys, "sagemaker", "model", "create", "iris-1-0")
    assert "model names have the format <model-name>-X-Y-Z[-dev]" in line
    line = keel_fails(capsys, "sagemaker", "model", "describe", "iris-9-9-9")
    assert line.startswith("error: sagemaker describe_model: ") and "iris-iris-9-9-9" in line
    # a keel.yml without what training needs
    (tmp_path / "keel.yml").write_text(
        keel_yml(aws_server.endpoint).replace(f"  image: {IMAGE}\n", "")
    )
    line = keel_fails(capsys, "sagemaker", "training-job", "create", "iris-1-0", "iris-20240131")
    assert "sagemaker.train.image is not set; it is needed to create training job iris-1-0" in line
    (tmp_path / "keel.yml").write_text("model: {name: iris, module: m}\n")
    line = keel_fails(capsys, "sagemaker", "endpoint", "list")
    assert "has no sagemaker: section: keel sagemaker needs one" in line


def sm_jobs(aws_server) -> list[Any]:
    return aws_server.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]


def test_a_failed_wait_is_one_line_and_a_server_that_is_not_there_too(
    aws_server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's: no retries with back-off here
    (tmp_path / "keel.yml").write_text(keel_yml("http://127.0.0.1:9"))  # nothing listens
    line = keel_fails(capsys, "sagemaker", "endpoint", "describe", "iris-1-0-0-live")
    assert line.startswith("error: sagemaker describe_endpoint: Could not connect to the endpoint")
    (tmp_path / "keel.yml").write_text(keel_yml(aws_server.endpoint))
    line = keel_fails(
        capsys,
        "sagemaker",
        "endpoint",
        "wait",
        "iris-1-0-0-live",
        "--delay",
        "0",
        "--max-attempts",
        "1",
    )
    assert line.startswith("error: waiting for endpoint iris-iris-1-0-0-live: ")
