"""ML2P projects on keel, unchanged but for their imports: the tutorial (CLI verbs, local.py,
LocalEnv downloads from keel's store) and ML2P's happy and unhappy docker-test models
(ml2p-docker verbs, and ``keel serve`` with ML2P's wire shapes checked over HTTP)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from tests.serving.test_server import _free_port, _stop, _wait_ready
from tests.test_cli import keel

from keel.compat import ml2p as ml2p_package
from keel.compat.ml2p import hyperparameters
from keel.compat.ml2p.core import S3URL, SageMakerEnv, SageMakerEnvType
from keel.compat.ml2p.errors import APIError, ClientError, ServerError

PROJECTS = Path(__file__).parent / "projects"
ML2P_VERSION = ml2p_package.__version__
HOUSE = {
    "CRIM": 0.1, "ZN": 0.2, "INDUS": 0.3, "CHAS": 0.0, "NOX": 0.5, "RM": 6.5, "AGE": 0.6,
    "DIS": 0.4, "RAD": 0.1, "TAX": 0.3, "PTRATIO": 0.2, "B": 0.9, "LSTAT": 5.0,
}  # fmt: skip


def _project(tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    project = tmp_path / name
    shutil.copytree(PROJECTS / name, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "ML2P_"))}
    # s3folder is the tutorial's placeholder bucket: artifacts go to a local folder
    env["KEEL_ARTIFACTS"] = str(project / "artifacts")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    return project, env


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    return out.stdout


def _json_lines(text: str) -> list[object]:
    decoder, found, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


# --- the tutorial -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The tutorial's steps through ``keel ml2p``: dataset, training job, model."""
    project, env = _project(tmp_path_factory.mktemp("ml2p"), "ml2p_tutorial")
    python = [sys.executable]
    subprocess.run([*python, "create_boston_prices_csv.py"], cwd=project, env=env, check=True)
    _ok(keel("ml2p", "dataset", "create", "boston-20200901", cwd=project, env=env))
    up = _ok(
        keel("ml2p", "dataset", "up", "boston-20200901", "house-prices.csv", cwd=project, env=env)
    )
    assert json.loads(up)["version"] == 2
    trained = _ok(
        keel("ml2p", "training-job", "create", "boston-train", "boston-20200901",
             "--model-type", "boston", cwd=project, env=env)
    )  # fmt: skip
    assert json.loads(trained)["TrainingJobName"] == "ml2p-tutorial-boston-train"
    made = _ok(
        keel("ml2p", "model", "create", "boston-model", "--training-job", "boston-train",
             cwd=project, env=env)
    )  # fmt: skip
    assert json.loads(made) == {
        "ModelName": "ml2p-tutorial-boston-model", "model": "boston", "version": 1
    }  # fmt: skip
    return project, env


def test_tutorial_dataset_verbs_list_the_files(tutorial: tuple[Path, dict[str, str]]) -> None:
    project, env = tutorial
    listed = _json_lines(
        _ok(keel("ml2p", "dataset", "ls", "boston-20200901", cwd=project, env=env))
    )
    assert [f["filename"] for f in listed] == ["README.rst", "house-prices.csv"]
    names = _json_lines(_ok(keel("ml2p", "dataset", "list", cwd=project, env=env)))
    assert names == ["boston-20200901"]
    _ok(
        keel(
            "ml2p",
            "dataset",
            "dn",
            "boston-20200901",
            "README.rst",
            "readme.txt",
            cwd=project,
            env=env,
        )
    )
    assert (
        project / "readme.txt"
    ).read_text() == "Dataset boston-20200901 for project ml2p-tutorial."


def test_tutorial_endpoint_invoke_answers_metadata_and_result(
    tutorial: tuple[Path, dict[str, str]],
) -> None:
    project, env = tutorial
    out = keel(
        "ml2p", "endpoint", "invoke", "boston-model-live", json.dumps(HOUSE), cwd=project, env=env
    )
    body = json.loads(_ok(out))["Body"]
    assert isinstance(body["result"]["predicted_price"], float)
    assert body["metadata"]["model_version"] == "boston@1"
    assert body["metadata"]["ml2p_version"] == ML2P_VERSION


def test_tutorial_local_env_downloads_from_keel_and_local_py_runs(
    tutorial: tuple[Path, dict[str, str]],
) -> None:
    project, env = tutorial
    script = (
        "from keel.compat.ml2p.core import LocalEnv\n"
        "env = LocalEnv('.', './ml2p.yml', None)\n"
        "env.download_dataset('boston-20200901')\n"
        "env.clean_model_folder()\n"
        "env.download_model('boston-train')\n"
        "from model import BostonModel\n"
        "p = BostonModel().predictor(env)\n"
        "p.setup()\n"
        "print(p.invoke({c: 1.0 for c in p.features})['metadata']['model_version'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "local"
    assert (project / "input" / "data" / "training" / "house-prices.csv").is_file()
    assert (project / "model" / "boston-model.json").is_file()
    local = subprocess.run(
        [sys.executable, "local.py"], cwd=project, env=env, capture_output=True, text=True
    )
    assert local.returncode == 0, local.stderr
    assert "Prediction:" in local.stdout and "predicted_price" in local.stdout


def test_tutorial_doctor_reports_the_model_and_the_aws_keys(
    tutorial: tuple[Path, dict[str, str]],
) -> None:
    project, env = tutorial
    out = keel("doctor", "--json", cwd=project, env=env)
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert "ml2p.yml" in checks["config"]["detail"]
    assert checks["ml2p model"]["detail"] == "model boston (model.BostonModel)"
    unused = checks["ml2p.yml (AWS)"]["detail"]
    assert "defaults.image" in unused and "notebook.volume_size" in unused
    assert "record_invokes" not in unused


# --- the docker tests' happy and unhappy models ------------------------------------------


@pytest.fixture
def docker_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    return _project(tmp_path, "ml2p_docker")


def test_ml2p_docker_train_writes_the_model(docker_project: tuple[Path, dict[str, str]]) -> None:
    project, env = docker_project
    ml = project / "opt-ml"
    ml.mkdir()
    env = {**env, "ML2P_TRAINING_JOB": "test-train-1.2.3", "ML2P_PROJECT": "test-project",
           "ML2P_S3_URL": "s3://foo/bar"}  # fmt: skip
    out = keel("ml2p-docker", "--ml-folder", str(ml), "--model", "models.HappyModel", "train",
               cwd=project, env=env)  # fmt: skip
    assert out.stdout.splitlines() == ["Starting training job test-train-1.2.3.", "Done."]
    assert "Look at all the training happening!" in out.stderr
    assert (ml / "model" / "output.txt").read_text() == "Success!"


def test_a_keel_image_entrypoint_trains_an_ml2p_project_the_ml2p_way(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    """An ML2P project's image (keel container build in its folder): SageMaker's `train`
    runs ML2P's trainer, the class from ML2P_MODEL_CLS as keel sagemaker's jobs set it."""
    project, env = docker_project
    ml = project / "opt-ml"
    ml.mkdir()
    env = {**env, "ML2P_TRAINING_JOB": "test-train-1-2", "ML2P_MODEL_CLS": "models.HappyModel"}
    out = keel("container", "entrypoint", "train", "--ml-root", str(ml), cwd=project, env=env)
    assert out.stdout.splitlines() == ["Starting training job test-train-1-2.", "Done."]
    assert (ml / "model" / "output.txt").read_text() == "Success!"


def test_ml2p_docker_unhappy_training_writes_failure_and_exits_non_zero(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = docker_project
    ml = project / "opt-ml"
    ml.mkdir()
    env = {**env, "ML2P_TRAINING_JOB": "test-train-1.2.3", "ML2P_MODEL_CLS": "models.UnhappyModel"}
    out = keel("ml2p-docker", "--ml-folder", str(ml), "train", cwd=project, env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: training failed: ValueError: Much unhappiness"
    )
    failure = (ml / "output" / "failure").read_text()
    assert failure.startswith("Traceback (most recent call last):")
    assert failure.rstrip().endswith("ValueError: Much unhappiness")


def test_ml2p_docker_without_a_model_is_a_usage_error(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = docker_project
    out = keel("ml2p-docker", "--ml-folder", str(project), "train", cwd=project, env=env)
    assert out.returncode == 2
    assert "The global parameter --model must either be given" in out.stderr


def test_ml2p_docker_generate_dataset(docker_project: tuple[Path, dict[str, str]]) -> None:
    project, env = docker_project
    ml = project / "opt-ml"
    ml.mkdir()
    env = {**env, "ML2P_DATASET": "test-dataset-20220112"}
    out = keel("ml2p-docker", "--ml-folder", str(ml), "--model", "models.HappyModel",
               "generate-dataset", cwd=project, env=env)  # fmt: skip
    assert out.stdout.splitlines() == [
        "Starting generation of dataset test-dataset-20220112.",
        "Done.",
    ]
    assert (ml / "input" / "data" / "training" / "output.txt").read_text() == "Yess!!"


def test_ml2p_docker_serve_answers_from_the_model_folder(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = docker_project
    (project / "opt-ml" / "model").mkdir(parents=True)
    env = {**env, "ML2P_MODEL_VERSION": "test-model-1.2.3", "ML2P_MODEL_CLS": "models.HappyModel"}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "ml2p-docker", "--ml-folder", "opt-ml", "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        ping = httpx2.get(f"{url}/ping", timeout=10).json()
        assert ping == {"model_version": "test-model-1.2.3", "ml2p_version": ML2P_VERSION}
        one = httpx2.post(f"{url}/invocations", json={"input": 1}, timeout=10).json()
        assert one["result"] == {"probability": 0.5, "input": 1}
    finally:
        out = _stop(proc)
    assert out.startswith("Starting server for model version test-model-1.2.3.")


def test_unhappy_training_job_fails_in_one_line(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = docker_project
    _ok(keel("ml2p", "--model", "happy", "dataset", "generate", "ds-1", cwd=project, env=env))
    out = keel(
        "ml2p", "training-job", "create", "sad-1", "ds-1", "-m", "unhappy", cwd=project, env=env
    )
    assert out.returncode != 0
    assert "Much unhappiness" in out.stderr


def test_several_models_and_none_picked_says_how_to_pick(
    docker_project: tuple[Path, dict[str, str]],
) -> None:
    project, env = docker_project
    out = keel("ml2p", "training-job", "create", "j", "ds", cwd=project, env=env)
    assert out.returncode == 1
    assert (
        "models lists several (happy, unhappy): pick one with `keel ml2p --model NAME" in out.stderr
    )
    out = keel("ml2p", "--model", "sad", "dataset", "list", cwd=project, env=env)
    assert "no model 'sad' in models" in out.stderr and "ml2p.yml line 3" in out.stderr


@pytest.fixture
def happy_server(
    docker_project: tuple[Path, dict[str, str]],
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """The happy model trained through ``keel ml2p`` and served by ``keel serve``."""
    project, env = docker_project
    env = {**env, "KEEL_ML2P_MODEL": "happy"}
    _ok(keel("ml2p", "dataset", "generate", "ds-1", cwd=project, env=env))
    _ok(keel("ml2p", "training-job", "create", "happy-train", "ds-1", cwd=project, env=env))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve", "happy@happy-train", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield url, project, env
    finally:
        _stop(proc)


def test_happy_model_answers_ml2p_wire_shapes(
    happy_server: tuple[str, Path, dict[str, str]],
) -> None:
    url, _, _ = happy_server
    meta_keys = {"model_version", "ml2p_version", "timestamp"}
    with httpx2.Client(base_url=url, timeout=30) as client:
        ping = client.get("/ping")
        assert ping.status_code == 200 and ping.headers["content-type"] == "application/json"
        assert ping.json() == {"model_version": "happy@1", "ml2p_version": ML2P_VERSION}

        one = client.post("/invocations", json={"input": 12345})
        assert one.status_code == 200
        assert set(one.json()) == {"metadata", "result"}
        assert set(one.json()["metadata"]) == meta_keys
        assert one.json()["metadata"]["model_version"] == "happy@1"
        assert one.json()["result"] == {"probability": 0.5, "input": 12345}

        many = client.post("/invocations", json={"instances": [{"input": 12345}, {"input": 12346}]})
        assert many.status_code == 200
        predictions = many.json()["predictions"]
        assert list(many.json()) == ["predictions"]
        assert [p["result"] for p in predictions] == [
            {"probability": 0.5, "input": 12345},
            {"probability": 0.5, "input": 12346},
        ]
        assert all(set(p["metadata"]) == meta_keys for p in predictions)
        assert predictions[0]["metadata"]["ml2p_version"] == ML2P_VERSION

        client_error = client.post("/invocations", json={"client_error": "bad param"})
        assert client_error.status_code == 400
        assert client_error.headers["content-type"] == "application/json"
        assert client_error.json() == {"message": "client", "details": ["bad param"]}

        server_error = client.post("/invocations", json={"server_error": "eep"})
        assert server_error.status_code == 500
        assert server_error.json() == {"message": "server", "details": ["eep"]}

        api_error = client.post("/invocations", json={"flask_api_error": "message eep"})
        assert api_error.status_code == 500
        assert api_error.json() == {"details": [], "message": "message eep"}

        generic = client.post("/invocations", json={"generic_error": "test error"})
        assert generic.status_code == 500 and "test error" not in generic.text

        batch_error = client.post("/invocations", json={"instances": [{"client_error": "x"}]})
        assert batch_error.status_code == 400
        assert batch_error.json() == {"message": "client", "details": ["x"]}

        params = client.get("/execution-parameters").json()
        assert params["MaxConcurrentTransforms"] == 1
        assert params["BatchStrategy"] == "MULTI_RECORD"


def test_happy_model_invocations_are_recorded(
    happy_server: tuple[str, Path, dict[str, str]],
) -> None:
    import time

    from keel import Client

    url, project, env = happy_server  # ml2p.yml's deploy.record_invokes: true
    with httpx2.Client(base_url=url, timeout=30) as client:
        assert client.post("/invocations", json={"input": 7}).status_code == 200
    store = Client(
        store=str(project / ".keel"), artifacts=env["KEEL_ARTIFACTS"], project="ml2p-docker-test"
    )
    deadline = time.monotonic() + 30
    while not (found := store.find_invocations("happy@1")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the recorder writes in batches, every second
    assert [r.input for r in found] == [{"input": 7}]
    assert found[0].request_id.startswith("ts-") and "--uuid-" in found[0].request_id


# --- the library's names --------------------------------------------------------------------


def test_errors_carry_status_message_and_details() -> None:
    assert APIError("m").status_code == 500 and APIError("m").details == []
    assert APIError("m", details="zoom").details == ["zoom"]
    assert APIError("m", status_code=501).status_code == 501
    assert ClientError("c", ["a", "b"]).get_body() == {"message": "c", "details": ["a", "b"]}
    assert ClientError("c").status_code == 400 and ServerError("s").status_code == 500
    assert isinstance(ClientError("c"), APIError)


def test_hyperparameters_round_trip() -> None:
    params = {"a": 1, "b": {"c": "x", "d": [1, 2]}}
    encoded = hyperparameters.encode(params)
    assert encoded == {"a": "1", "b.c": '"x"', "b.d": "[1, 2]"}
    assert hyperparameters.decode(encoded) == params
    with pytest.raises(hyperparameters.HyperParameterEncodingError):
        hyperparameters.encode({"a.b": 1})


def test_sagemaker_env_reads_ml2p_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "ML2P_TRAINING_JOB": "t-1",
        "ML2P_PROJECT": "p",
        "ML2P_S3_URL": "s3://foo/bar",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ML2P_DATASET", raising=False)
    env = SageMakerEnv(str(tmp_path))
    assert env.env_type is SageMakerEnvType.TRAIN and env.training_job_name == "t-1"
    assert env.s3.url("/models") == "s3://foo/bar/models" and env.s3.bucket() == "foo"
    assert env.dataset_folder() == tmp_path / "input" / "data" / "training"
    assert env.data_channel_folder("extra") == tmp_path / "input" / "data" / "extra"
    assert env.model_folder() == tmp_path / "model" and env.resourceconfig() == {}
    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "resourceconfig.json").write_text('{"current_host": "algo-1"}')
    assert env.resourceconfig() == {"current_host": "algo-1"}
    env.write_failure("boom")
    assert (tmp_path / "output" / "failure").read_text() == "boom"
    assert S3URL("s3://bucket/").path("/datasets/x") == "datasets/x"
    monkeypatch.delenv("ML2P_TRAINING_JOB")
    assert SageMakerEnv(str(tmp_path)).env_type is SageMakerEnvType.UNKNOWN


def test_tutorial_job_model_and_endpoint_lookups(tutorial: tuple[Path, dict[str, str]]) -> None:
    """The tutorial's `training-job wait/describe`, `model list/describe` and `endpoint
    create/wait/describe` steps, with the endpoint really served."""
    project, env = tutorial
    assert _json_lines(_ok(keel("ml2p", "training-job", "list", cwd=project, env=env))) == [
        "boston-train"
    ]
    waited = _ok(keel("ml2p", "training-job", "wait", "boston-train", cwd=project, env=env))
    assert "Completed" in waited
    described = json.loads(
        _ok(keel("ml2p", "training-job", "describe", "boston-train", cwd=project, env=env))
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ModelArtifacts"] == {"model": "boston", "version": 1}
    missing = keel("ml2p", "training-job", "describe", "nope", cwd=project, env=env)
    assert missing.returncode != 0 and "no training job 'nope'" in missing.stderr
    assert _json_lines(_ok(keel("ml2p", "model", "list", cwd=project, env=env))) == ["boston-model"]
    model = json.loads(_ok(keel("ml2p", "model", "describe", "boston-model", cwd=project, env=env)))
    assert model["version"] == 1 and model["TrainingJobName"] == "boston-train"

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    down = json.loads(
        _ok(keel("ml2p", "endpoint", "describe", "boston-model-live", "--url", url,
                 cwd=project, env=env))
    )  # fmt: skip
    assert down["EndpointStatus"] == "OutOfService" and down["version"] == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "ml2p", "endpoint", "create", "boston-model-live",
         "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _ok(keel("ml2p", "endpoint", "wait", "boston-model-live", "--url", url,
                 "--timeout", "60", cwd=project, env=env))  # fmt: skip
        up = json.loads(
            _ok(keel("ml2p", "endpoint", "describe", "boston-model-live", "--url", url,
                     cwd=project, env=env))
        )  # fmt: skip
        assert up["EndpointStatus"] == "InService"
        assert up["ping"]["ml2p_version"] == ML2P_VERSION
        invoked = json.loads(
            _ok(keel("ml2p", "endpoint", "invoke", "boston-model-live", json.dumps(HOUSE),
                     "--url", url, cwd=project, env=env))
        )  # fmt: skip
        assert invoked["StatusCode"] == 200
        assert isinstance(invoked["Body"]["result"]["predicted_price"], float)
    finally:
        _stop(proc)


def test_init_makes_the_store_ready(tmp_path: Path) -> None:
    project, env = _project(tmp_path, "ml2p_tutorial")
    out = _ok(keel("ml2p", "init", cwd=project, env=env))
    assert "project ml2p-tutorial" in out and str(project / "artifacts") in out
    assert (project / ".keel").is_dir()
