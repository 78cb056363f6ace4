"""The SageMaker container contract on this machine: ``keel sagemaker local train|serve`` in
an /opt/ml-shaped folder, as the image's entrypoint runs it (tests/deploy/test_container_image.py
runs the same entrypoint inside a built image)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.deploy.helpers import keel_cli
from tests.monitoring.helpers import EXAMPLES, free_port

import keel
from keel.deploy.contract import MlFolder, train, typed_hyperparameters
from keel.deploy.model_dir import INFO, VERSION, read_model_dir
from keel.errors import ConfigError, IntegrityError, InvalidInput

IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    project = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", project, ignore=shutil.ignore_patterns(".keel", "output"))
    return project


# --- hyperparameters ------------------------------------------------------------------------


def test_hyperparameters_are_typed_back_through_keel_yml_params() -> None:
    params = {
        "C": 1.0,
        "max_iter": 500,
        "balanced": False,
        "layers": [8, 4],
        "name": "lr",
        "seed": None,
        "tree": {"depth": 3},
    }
    given = {
        "C": "0.25",
        "max_iter": "50",
        "balanced": "True",
        "layers": "[16, 8, 4]",
        "name": "svm",
        "seed": "7",
        "tree.depth": "5",
        "sagemaker_program": "train.py",  # SageMaker's own: left out
    }
    assert typed_hyperparameters(given, params) == {
        "C": 0.25,
        "max_iter": 50,
        "balanced": True,
        "layers": [16, 8, 4],
        "name": "svm",
        "seed": 7,
        "tree.depth": 5,
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_iter": "5.5"}, "max_iter='5.5' is not a int"),
        ({"C": "abc"}, "C='abc' is not a float"),
        ({"balanced": "maybe"}, "balanced='maybe' is not a bool"),
        ({"layers": '{"a": 1}'}, "not a JSON list"),
        ({"gamma": "1"}, "'gamma' is not one of keel.yml's model.params (C, balanced, layers"),
    ],
)
def test_a_hyperparameter_keel_yml_cannot_read_is_refused(given: dict, message: str) -> None:
    params = {"C": 1.0, "max_iter": 500, "balanced": False, "layers": [8]}
    with pytest.raises(InvalidInput) as caught:
        typed_hyperparameters(given, params)
    assert message in str(caught.value)


# --- train ----------------------------------------------------------------------------------


def test_local_train_types_hyperparameters_reads_channels_and_leaves_the_model(
    iris: Path,
) -> None:
    channel = iris.parent / "subset.csv"
    rows = (iris / "data/iris_train.csv").read_text().splitlines()
    channel.write_text("\n".join(rows[:1] + rows[1::2]) + "\n")  # every other row
    done = keel_cli(
        iris,
        "sagemaker",
        "local",
        "train",
        "-H",
        "C=0.25",
        "-H",
        "max_iter=50",
        "--channel",
        f"iris_train={channel}",
    )
    assert done.returncode == 0, done.stderr
    assert "keel metric accuracy=" in done.stdout  # for the job's MetricDefinitions
    model_dir = iris / "sagemaker-local" / "model"
    info = read_model_dir(model_dir)  # checks version/ against the content hash
    assert (info.model, info.version, info.label) == ("iris", 1, "1.0.0")
    assert info.params == {"C": 0.25, "max_iter": 50}  # typed, not SageMaker's strings
    assert info.metrics["accuracy"] > 0.8
    # the channel's one file took the place of the data source of its name
    written = yaml.safe_load((iris / ".keel-sagemaker.yml").read_text())
    assert written["datasources"]["iris_train"]["path"].endswith("input/data/iris_train/subset.csv")
    assert written["model"]["params"] == {"C": 0.25, "max_iter": 50}
    hyper = json.loads((iris / "sagemaker-local/input/config/hyperparameters.json").read_text())
    assert hyper == {"C": "0.25", "max_iter": "50"}  # strings, as SageMaker writes them
    assert not (iris / "sagemaker-local/output/failure").exists()


def test_a_failed_training_writes_its_reason_and_exits_non_zero(iris: Path) -> None:
    broken = iris.parent / "broken.csv"
    broken.write_text("a,b\n1,2\n")  # not the iris columns
    done = keel_cli(iris, "sagemaker", "local", "train", "--channel", f"iris_train={broken}")
    assert done.returncode != 0
    failure = (iris / "sagemaker-local/output/failure").read_text()
    assert failure.splitlines()[0]  # the reason first (SageMaker shows the first 1 KiB)
    assert "Traceback" in failure  # and then where it happened, for the model's author
    assert "sagemaker-local/output/failure" in done.stderr
    assert not (iris / "sagemaker-local/model" / INFO).exists()

    done = keel_cli(iris, "sagemaker", "local", "train", "-H", "gamma=2")
    assert done.returncode != 0
    failure = (iris / "sagemaker-local/output/failure").read_text()
    assert failure.startswith("hyperparameter 'gamma' is not one of keel.yml's model.params")
    assert "Traceback" not in failure  # a mistake in the request: one line is the whole story


def test_a_channel_that_names_nothing_is_refused(iris: Path) -> None:
    done = keel_cli(
        iris, "sagemaker", "local", "train", "--channel", f"extra={iris / 'data/iris_test.csv'}"
    )
    assert done.returncode != 0
    assert "input channel 'extra' names no data source of keel.yml" in done.stderr


def test_the_training_channel_is_the_dataset_and_the_team_store_records_the_run(
    iris: Path, tmp_path: Path
) -> None:
    ml = MlFolder(tmp_path / "ml")
    (ml.data / "training").mkdir(parents=True)
    shutil.copy(iris / "data/iris_train.csv", ml.data / "training" / "rows.csv")
    store = tmp_path / "team"
    outcome = train(ml, iris, environ={"KEEL_STORE": str(store), "TRAINING_JOB_NAME": "iris-1-0"})
    assert outcome.dataset == "iris-training@1"
    client = keel.Client(store=str(store), project="examples")
    run = client.get_run(outcome.info.run_id)
    assert run.tags["dataset"] == "iris-training@1"
    assert run.tags["sagemaker_training_job"] == "iris-1-0"
    assert client.get_model_version("iris@1").content_hash == outcome.info.content_hash
    client.close()


# --- serve ----------------------------------------------------------------------------------


def _trained_model_dir(iris: Path) -> Path:
    done = keel_cli(iris, "sagemaker", "local", "train")
    assert done.returncode == 0, done.stderr
    return iris / "sagemaker-local"


def _wait_for_ping(port: int, process: subprocess.Popen[str]) -> None:
    import httpx2 as httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(
                f"the server exited: {process.stdout.read() if process.stdout else ''}"
            )
    raise AssertionError("no answer to /ping within 60 s")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    return out or ""


@pytest.mark.s3
@pytest.mark.slow
def test_local_serve_keeps_the_serving_contract_and_records_to_s3(
    iris: Path, s3_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import httpx2 as httpx

    ml_root = _trained_model_dir(iris)
    port = free_port()
    prefix = s3_server.new_url()  # s3://keel-test/<uuid>, as ML2P's s3folder
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keel.cli",
            "sagemaker",
            "local",
            "serve",
            "--ml-root",
            str(ml_root),
            "--port",
            str(port),
            "-e",
            "SAGEMAKER_MODEL_SERVER_WORKERS=2",
            "-e",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT=20",
            "-e",
            "ML2P_RECORD_INVOKES=true",
            "-e",
            f"ML2P_S3_URL={prefix}",
            "-e",
            "ML2P_MODEL_VERSION=iris-1-0-0",
        ],
        cwd=iris,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_ping(port, process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            slowest = 0.0
            for _ in range(20):
                started = time.perf_counter()
                assert http.get("/ping").status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
            assert slowest < 2.0  # SageMaker's health check gives /ping 2 s
            assert http.get("/execution-parameters").status_code == 200
            answer = http.post("/invocations", json=IRIS_ROW)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["species"] == "setosa"
            assert answer.json()["metadata"]["model"] == "iris"
            batch = http.post("/invocations", json={"instances": [IRIS_ROW, IRIS_ROW]})
            assert batch.status_code == 200
            assert len(batch.json()["predictions"]) == 2
    finally:
        output = _stop(process)
    assert "2 worker(s)" in output
    # the records went to the bucket ML2P_S3_URL names (keel's files under its keel/ prefix)
    bucket, _, key = prefix[len("s3://") :].partition("/")
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}/keel/")
    records = []
    for item in listed.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line]
        except (UnicodeDecodeError, ValueError):
            continue  # the version's own files (pickles)
        records += [r for r in lines if isinstance(r, dict) and "request_id" in r]
    assert len(records) == 3, records  # the single call and the batch's two rows
    assert {r["status"] for r in records} == {"ok"}
    assert any(r["input"] == IRIS_ROW for r in records)


def test_serving_refuses_a_model_folder_changed_on_the_way(iris: Path) -> None:
    ml_root = _trained_model_dir(iris)
    fitted = next((ml_root / "model" / VERSION).glob("fitted.*"))
    fitted.write_bytes(fitted.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="does not match the content hash"):
        read_model_dir(ml_root / "model")
    done = keel_cli(
        iris, "sagemaker", "local", "serve", "--ml-root", str(ml_root), "--port", str(free_port())
    )
    assert done.returncode != 0
    assert "does not match the content hash" in done.stderr


def test_serve_honours_keel_model_version(iris: Path, tmp_path: Path) -> None:
    from keel.deploy.contract import prepare_serve

    ml_root = _trained_model_dir(iris)
    ml = MlFolder(ml_root)
    ready = prepare_serve(ml, iris, environ={"KEEL_MODEL_VERSION": "iris@1"})
    assert ready.ref == "iris@1"
    with pytest.raises(ConfigError, match="holds iris@1 but KEEL_MODEL_VERSION says iris@2"):
        prepare_serve(ml, iris, environ={"KEEL_MODEL_VERSION": "iris@2"})
    # no model.tar.gz: the version comes from the team's store when both are named
    team = tmp_path / "team"
    train(MlFolder(tmp_path / "job"), iris, environ={"KEEL_STORE": str(team)})
    empty = MlFolder(tmp_path / "endpoint")
    ready = prepare_serve(
        empty, iris, environ={"KEEL_MODEL_VERSION": "iris@1", "KEEL_STORE": str(team)}
    )
    assert (ready.ref, ready.store) == ("iris@1", str(team))
    with pytest.raises(ConfigError, match="no model to serve"):
        prepare_serve(empty, iris, environ={})


def test_a_job_for_another_model_is_refused(iris: Path, tmp_path: Path) -> None:
    ml = MlFolder(tmp_path / "ml")
    with pytest.raises(ConfigError, match=r"asks for model wine \(KEEL_MODEL\)"):
        train(ml, iris, environ={"KEEL_MODEL": "wine"})
    assert "KEEL_MODEL" in ml.failure.read_text()
