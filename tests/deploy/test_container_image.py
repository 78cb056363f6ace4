"""``keel container build`` from a fresh project, and the built images keeping SageMaker's
train and serve contract: the image's own entrypoint, environment and working folder, run in a
chroot of its filesystem (``podman run`` is refused in this sandbox; see images.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.deploy.helpers import keel_cli
from tests.deploy.images import ImageRoot, debian_image, podman, require_podman
from tests.monitoring.helpers import free_port

from keel.deploy.model_dir import read_model_dir

pytestmark = [pytest.mark.container, pytest.mark.slow]

ROW = {"sepal_length": 6.7, "sepal_width": 3.1, "petal_length": 5.6, "petal_width": 2.4}
#: what a model image must not carry: the UI's, the test tools, Dask, MLflow
NOT_IN_AN_IMAGE = ("plotly", "dask", "distributed", "mlflow", "_pytest", "playwright", "jinja2")


@pytest.fixture(scope="module")
def base() -> str:
    require_podman()
    return debian_image()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project, as a newcomer makes one: keel init, then keel train."""
    folder = tmp_path_factory.mktemp("fresh")
    done = keel_cli(folder, "init", "demo")
    assert done.returncode == 0, done.stderr
    done = keel_cli(folder / "demo", "train")
    assert done.returncode == 0, done.stderr
    return folder / "demo"


def build(project: Path, base: str, tag: str, *ref: str) -> dict:
    done = keel_cli(
        project, "container", "build", *ref, "--base", base, "--builder", "podman",
        "--tag", tag, "--json", timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def image_tags() -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for tag in tags:
        podman("rmi", "-f", tag, check=False)


def serve_in(root: ImageRoot, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """The image's `serve` on 127.0.0.1 (tests listen on loopback only), once /ping answers."""
    import httpx2 as httpx

    port = free_port()
    process = root.start(
        ["serve", "--host", "127.0.0.1"], {"SAGEMAKER_BIND_TO_PORT": str(port), **env}
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.3)
        if process.poll() is not None:
            raise AssertionError(f"the image's serve exited:\n{process.stdout.read()}")  # type: ignore[union-attr]
    process.kill()
    raise AssertionError("the image's serve did not answer /ping within 90 s")


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        return process.communicate(timeout=30)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate(timeout=10)[0] or ""


def check_serving(port: int) -> None:
    import httpx2 as httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        slowest = 0.0
        for _ in range(10):
            started = time.perf_counter()
            assert http.get("/ping").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 2.0
        assert http.get("/execution-parameters").status_code == 200
        answer = http.post("/invocations", json=ROW)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["species"] == "virginica"


def test_a_version_image_holds_what_it_needs_and_serves_the_contract(
    project: Path, base: str, image_tags: list[str]
) -> None:
    tag = "localhost/keel-test-demo:1"
    image_tags.append(tag)
    built = build(project, base, tag, "demo@1")
    assert built["image"] == tag and built["model"] == "demo@1"
    assert built["size_bytes"] > 0 and built["build_seconds"] > 0
    assert "scikit-learn" in built["requirements"]
    with ImageRoot(tag) as root:
        assert root.labels["keel.model"] == "demo"
        assert root.labels["keel.version"] == "1"
        info = read_model_dir(root.path("/opt/keel/model"))  # the version, hash checked
        assert info.ref == "demo@1" and info.content_hash == root.labels["keel.content_hash"]
        installed = {p.name for p in root.path("/opt/keel/site-packages").iterdir()}
        assert {"keel", "sklearn", "fastapi", "uvicorn"} <= installed
        assert not installed & set(NOT_IN_AN_IMAGE)
        assert root.path("/opt/keel/project/keel.yml").is_file()
        assert not root.path("/opt/keel/project/.keel").exists()  # the store stays home
        # SageMaker's serving contract, the version built into the image
        process, port = serve_in(root, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
        try:
            check_serving(port)
        finally:
            output = stop(process)
        assert "serving demo@1" in output and "2 worker(s)" in output


def test_a_project_image_trains_as_a_training_job_then_serves_its_model(
    project: Path, base: str, image_tags: list[str]
) -> None:
    tag = "localhost/keel-test-demo-train:latest"
    image_tags.append(tag)
    built = build(project, base, tag)
    assert built["model"] is None
    with ImageRoot(tag) as root:
        config = root.path("/opt/ml/input/config")
        config.mkdir(parents=True)
        channel = root.path("/opt/ml/input/data/iris_train")
        channel.mkdir(parents=True)
        shutil.copy(project / "data/iris_train.csv", channel / "train.csv")

        # a training job's failure: its reason in /opt/ml/output/failure, a non-zero exit
        (config / "hyperparameters.json").write_text(json.dumps({"C": "strong"}))
        failed = root.run(["train"])
        assert failed.returncode != 0
        failure = root.path("/opt/ml/output/failure").read_text()
        assert failure.startswith("hyperparameter C='strong' is not a float")

        (config / "hyperparameters.json").write_text(json.dumps({"C": "0.5", "max_iter": "200"}))
        root.path("/opt/ml/output/failure").unlink()
        done = root.run(["train"], {"TRAINING_JOB_NAME": "demo-1-0"})
        assert done.returncode == 0, done.stdout + done.stderr
        assert "keel metric accuracy=" in done.stdout
        info = read_model_dir(root.path("/opt/ml/model"))
        assert info.model == "demo" and info.params == {"C": 0.5, "max_iter": 200}
        assert not root.path("/opt/ml/output/failure").exists()

        # the endpoint's container: the model SageMaker unpacked into /opt/ml/model
        process, port = serve_in(root, {"KEEL_MODEL_VERSION": info.ref})
        try:
            check_serving(port)
        finally:
            output = stop(process)
        assert f"serving {info.ref}" in output
