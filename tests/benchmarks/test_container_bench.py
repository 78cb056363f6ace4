"""The container benchmark (``python -m bench --only container``): what it assumes of MLflow.

The builds themselves take minutes and are the benchmark, not a test. Checked here, cheaply:
the Dockerfile MLflow 3.17.2 writes for the benchmark's iris model is the one the benchmark
describes and stands a base in for (``FROM python:<this Python>-slim``, nginx from apt, MLflow
from PyPI, the model's pinned requirements), and the numbers read from a build are read right.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench package lives next to src/, not inside keel
    sys.path.insert(0, str(REPO))

from bench import container_bench  # noqa: E402


# MLflow's own warnings (its SQLAlchemy use, its logging of a model), not keel's
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mlflow_dockerfile_is_the_one_the_bench_builds(tmp_path: Path) -> None:
    uri, needs = container_bench.mlflow_store(tmp_path)
    context = tmp_path / "context"
    done = subprocess.run(
        [container_bench._tool("mlflow"), "models", "generate-dockerfile",
         "-m", "models:/iris/1", "-d", str(context)],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    dockerfile = (context / "Dockerfile").read_text()
    python = ".".join(str(p) for p in sys.version_info[:3])
    # the name the stand-in base is tagged with is the one MLflow asks for
    assert container_bench.base_name(python).endswith("/" + dockerfile.split("FROM ")[1].split()[0])
    steps = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    assert "RUN apt-get -y update && apt-get install -y --no-install-recommends nginx" in steps
    assert f"RUN pip install mlflow=={needs['mlflow']}" in steps
    assert "env_manager='local'" in dockerfile  # no conda, no pyenv: the python slim base
    logged = (context / "model_dir" / "requirements.txt").read_text().split()
    assert sorted(logged) == sorted(f"{k}=={v}" for k, v in needs.items())
    assert (context / "model_dir" / "MLmodel").is_file()


def test_pip_downloads_are_summed_from_the_build_log() -> None:
    log = (
        "Collecting mlflow==3.17.2\n"
        "  Downloading mlflow-3.17.2-py3-none-any.whl (12.0 MB)\n"
        "  Downloading zope_event-6.2-py3-none-any.whl (6.5 kB)\n"
        "Requirement already satisfied: six in /usr/lib/python3/dist-packages (1.16.0)\n"
        "  Downloading tiny-1.0-py3-none-any.whl (512 B)\n"
    )
    assert container_bench.downloaded_bytes(log) == 12_000_000 + 6_500 + 512
    assert container_bench.downloaded_bytes("") == 0


def test_cold_pip_keeps_only_pypi_and_the_ca() -> None:
    env = {"PATH": "/usr/bin", "PIP_FIND_LINKS": "/opt/wheels", "PIP_INDEX_URL": "file:///x"}
    cold = container_bench.cold_pip_env(env)
    assert cold["PATH"] == "/usr/bin"
    assert "PIP_FIND_LINKS" not in cold and "PIP_INDEX_URL" not in cold
    assert cold["PIP_CONFIG_FILE"] == os.devnull and cold["PIP_NO_CACHE_DIR"] == "1"
