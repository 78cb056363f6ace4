"""Container images: ``keel container build`` vs MLflow's ``mlflow models build-docker``.

Issue 23's measurement, on the iris model of ``examples/iris`` (a scikit-learn
``LogisticRegression``, ``C=1``, ``max_iter=500``, on the same training CSV) trained both ways:

* **keel**: a copy of ``examples/iris``, ``keel train``, then ``keel container build iris@1
  --base BASE --builder podman --tag … --json`` as a subprocess (its wall time; the JSON's
  size, context and build times). keel writes the context on the host (pip installs the
  libraries for the image's Python there) and its Containerfile only copies.
* **MLflow 3.17.2**: the same estimator logged with ``mlflow.sklearn.log_model`` to a local
  SQLite store and registered as ``iris`` version 1; then what ``build-docker`` does in two
  steps, so the build can be podman's: ``mlflow models generate-dockerfile -m models:/iris/1``
  (the same Dockerfile and context ``build-docker`` writes, see
  ``mlflow/pyfunc/backend.py``) and ``podman build --isolation=chroot --no-cache``
  (``build-docker`` runs ``docker build``; RUN steps work here only in a chroot).

MLflow's Dockerfile starts ``FROM python:<the model's Python>-slim`` (3.11.7 here) since the
model records its Python version and needs no Java (``env_manager`` local: the Ubuntu + pyenv
or conda base is used only for ``--env-manager virtualenv|conda`` or Java flavours). It runs
``apt-get install nginx``, ``pip install mlflow==3.17.2``, then pip-installs the model's
``requirements.txt`` and ``gunicorn[gevent]``. No registry is reachable here, so both builds
start from one local stand-in of that image (:mod:`bench.container_base`), tagged under the
name MLflow's Dockerfile asks for and given to keel as ``--base``.

Cold means: no image of either left from an earlier round (each is removed first, its
layers with it), MLflow built with ``--no-cache``, and keel's host-side pip told to ignore
this machine's local wheel folders and caches (``PIP_CONFIG_FILE=/dev/null``, no
``PIP_FIND_LINKS``, ``PIP_NO_CACHE_DIR``), so both download the same libraries from PyPI
through the same network. Rounds alternate which system goes first; medians are shown.

Reported: each image's size (``podman image inspect``), the size it adds on top of the shared
base, and the cold build's wall time (keel: the whole ``keel container build``; MLflow:
``generate-dockerfile`` + ``podman build``), keel against MLflow (targets: no larger, no
slower). Each image is then checked: its Python loads the version and predicts one iris row
(a wrong or failed prediction is a wrong answer).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.container_base import (
    ContainerBenchError,
    image_size,
    layers,
    python_base,
    remove_image,
    run_in_image,
)
from bench.container_base import run as call
from bench.report import Measure, Report

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "iris"
FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
EXPECTED = "setosa"
KEEL_IMAGE = "localhost/keel-bench-iris:1"
MLFLOW_IMAGE = "localhost/mlflow-bench-iris:1"
#: what MLflow's model needs (its inferred list, minus what it picks up only because this
#: venv has it: skops imports dask, pytest, tblib, rich and psutil when they are installed)
MLFLOW_NEEDS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")
#: keel's image may be at most this many times MLflow's (size added, cold build time)
SIZE_FACTOR = TIME_FACTOR = 1.0
BUILD_TIMEOUT = 3600.0

KEEL_CHECK = f"""
from pathlib import Path
import keel
from keel.deploy.contract import MlFolder, prepare_serve
from keel.tracking.client import Client
ready = prepare_serve(MlFolder(Path("/opt/ml")), Path("/opt/keel/project"), environ={{}},
                      baked=Path("/opt/keel/model"))
model = keel.load_model(ready.ref, config=ready.config, client=Client(store=ready.store))
print(model.predict({ROW!r})["species"])
"""
MLFLOW_CHECK = f"""
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model("/opt/ml/model")
print(model.predict(pd.DataFrame([{ROW!r}]))[0])
"""


@dataclass
class Build:
    """One cold build: wall seconds, image bytes, and what the tool said."""

    seconds: float
    size: int
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class Side:
    """One system's rounds and what it put in its image."""

    builds: list[Build] = field(default_factory=list)
    requirements: dict[str, str] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    prediction: str | None = None
    error: str | None = None

    def median(self, what: str) -> float:
        return statistics.median(getattr(b, what) for b in self.builds)


def cold_pip_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with pip's local wheel folders, extra indexes and caches turned off (PyPI only,
    through the same network and CA as the builds in containers)."""
    cold = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    cold.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        cold["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    return cold


def _environ() -> dict[str, str]:
    env = {**os.environ, "KEEL_NO_STATUS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for name in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
        env.pop(name, None)
    return env


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name) or name


# --- training both ways -------------------------------------------------------------------------


def keel_project(root: Path, env: dict[str, str]) -> Path:
    """A copy of examples/iris with version 1 trained by ``keel train``."""
    project = root / "keel-iris"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".keel", "output"))
    call([_tool("keel"), "train"], cwd=project, env=env)
    return project


def mlflow_store(root: Path) -> tuple[str, dict[str, str]]:
    """The same estimator logged by MLflow and registered as ``iris`` version 1; the store's
    tracking URI and the requirements logged with it."""
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from keel.config import load_config

    uri = f"sqlite:///{root / 'mlflow.db'}"
    params = load_config(EXAMPLE / "keel.yml").settings.model.params
    frame = pd.read_csv(EXAMPLE / "data" / "iris_train.csv")
    fitted = LogisticRegression(**params).fit(frame[FEATURES], frame["species"])
    from importlib.metadata import version

    needs = {name: version(name) for name in MLFLOW_NEEDS}
    mlflow.set_tracking_uri(uri)
    # the artifacts beside the database (MLflow's default is ./mlruns of the working folder)
    experiment_id = mlflow.create_experiment(
        "container-bench", artifact_location=(root / "mlflow-artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(
            fitted,
            name="model",
            input_example=frame[FEATURES].head(2),
            pip_requirements=[f"{k}=={v}" for k, v in needs.items()],
            registered_model_name="iris",
        )
    return uri, needs


# --- building -----------------------------------------------------------------------------------


def build_keel(project: Path, base: str, env: dict[str, str]) -> tuple[Build, dict[str, Any]]:
    remove_image(KEEL_IMAGE)
    command = [_tool("keel"), "container", "build", "iris@1", "--base", base]
    command += ["--builder", "podman", "--tag", KEEL_IMAGE, "--json"]
    started = time.perf_counter()
    out = call(command, cwd=project, env=cold_pip_env(env), timeout=BUILD_TIMEOUT)
    seconds = time.perf_counter() - started
    said = json.loads(out)
    size = said.get("size_bytes") or image_size(KEEL_IMAGE)
    parts = {k: float(said[k]) for k in ("context_seconds", "build_seconds") if k in said}
    return Build(seconds, int(size), parts), said


def build_mlflow(root: Path, uri: str, env: dict[str, str], round_: int) -> tuple[Build, str]:
    """``generate-dockerfile`` + ``podman build``, cold; the Dockerfile and the build's log."""
    remove_image(MLFLOW_IMAGE)
    context = root / f"mlflow-context-{round_}"
    started = time.perf_counter()
    call(
        [_tool("mlflow"), "models", "generate-dockerfile", "-m", "models:/iris/1",
         "-d", str(context)],
        env={**env, "MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    generated = time.perf_counter() - started
    log = call(
        ["podman", "build", "--isolation=chroot", "--pull=never", "--no-cache",
         "-t", MLFLOW_IMAGE, str(context)],
        timeout=BUILD_TIMEOUT,
        both=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    parts = {"generate_seconds": generated, "build_seconds": seconds - generated}
    dockerfile = (context / "Dockerfile").read_text()
    shutil.rmtree(context, ignore_errors=True)
    return Build(seconds, image_size(MLFLOW_IMAGE), parts), dockerfile + "\n" + log


def downloaded_bytes(log: str) -> int:
    """What pip downloaded in a build (from its ``Downloading x.whl (12.0 MB)`` lines)."""
    scale = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    found = re.findall(r"Downloading \S+ \(([\d.]+) (B|kB|MB|GB)\)", log)
    return int(sum(float(n) * scale[u] for n, u in found))


def base_name(python: str) -> str:
    """The image MLflow's Dockerfile names for a model made with this Python."""
    return f"docker.io/library/python:{python}-slim"


# --- the benchmark ------------------------------------------------------------------------------


def run_bench(root: Path, console: Console, rounds: int) -> dict[str, Any]:
    """Both sides, ``rounds`` cold builds each; the numbers (see :func:`run`)."""
    env = _environ()
    python = ".".join(str(p) for p in sys.version_info[:3])
    console.print("[dim]container: the base image (python:3.11-slim stand-in)…[/dim]")
    base = python_base(base_name(python))
    base_size = image_size(base)
    console.print("[dim]container: training iris with keel and with MLflow…[/dim]")
    project = keel_project(root, env)
    uri, needs = mlflow_store(root)
    keel, mlflow = Side(), Side(requirements=needs)
    mlflow_log = ""
    for i in range(rounds):
        for is_keel in (i % 2 == 0, i % 2 != 0):
            if is_keel:
                built, said = build_keel(project, base, env)
                keel.builds.append(built)
                keel.requirements = said.get("requirements", {})
            else:
                built, mlflow_log = build_mlflow(root, uri, env, i)
                mlflow.builds.append(built)
            console.print(
                f"[dim]container round {i + 1}: {'keel' if is_keel else 'MLflow'} "
                f"{built.size / 1e6:,.0f} MB in {built.seconds:.1f} s[/dim]"
            )
    keel.layers, mlflow.layers = layers(KEEL_IMAGE), layers(MLFLOW_IMAGE)
    keel_env = {"PATH": "/opt/keel/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root",
                "PYTHONPATH": "/opt/keel/site-packages", "LANG": "C.UTF-8",
                "KEEL_NO_STATUS": "1"}  # fmt: skip
    mlflow_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                  "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    for side, image, code, env_in, workdir in (
        (keel, KEEL_IMAGE, KEEL_CHECK, keel_env, "/opt/keel/project"),
        (mlflow, MLFLOW_IMAGE, MLFLOW_CHECK, mlflow_env, "/opt/mlflow"),
    ):
        try:
            out = run_in_image(image, ["python3", "-c", code], env_in, workdir)
            side.prediction = out.strip().splitlines()[-1] if out.strip() else ""
        except (ContainerBenchError, subprocess.TimeoutExpired) as exc:
            side.error = str(exc)
    return {
        "base": base,
        "base_name": base_name(python),
        "base_bytes": base_size,
        "keel": keel,
        "mlflow": mlflow,
        "mlflow_downloaded_bytes": downloaded_bytes(mlflow_log),
        "mlflow_dockerfile": mlflow_log.split("\nSTEP 1/", 1)[0],
    }


def run(
    root: Path, report: Report, console: Console, rounds: int, keep: bool = False
) -> dict[str, Any] | None:
    """Measure, add the measures to ``report``; the raw numbers (None when skipped)."""
    missing = [t for t in ("podman", "mmdebstrap", "unshare") if shutil.which(t) is None]
    if missing:
        report.notes.append(
            f"container: skipped, {', '.join(missing)} not found (apt-get install podman "
            "mmdebstrap)"
        )
        return None
    try:
        found = run_bench(root, console, rounds)
    except ContainerBenchError as exc:
        report.problems.append(f"container: {exc}")
        return None
    finally:
        if not keep:
            for image in (KEEL_IMAGE, MLFLOW_IMAGE):
                with contextlib.suppress(ContainerBenchError):
                    remove_image(image)
    keel, mlflow, base = found["keel"], found["mlflow"], found["base_bytes"]
    correct = {
        "keel": keel.prediction == EXPECTED,
        "mlflow": mlflow.prediction == EXPECTED,
    }
    for name, side in (("keel", keel), ("MLflow", mlflow)):
        if side.prediction != EXPECTED:
            report.problems.append(
                f"container: {name}'s image predicted {side.prediction!r} for an iris setosa "
                f"row, not {EXPECTED!r}{': ' + side.error[-500:] if side.error else ''}"
            )
    k_size, m_size = keel.median("size") / 1e6, mlflow.median("size") / 1e6
    k_added, m_added = k_size - base / 1e6, m_size - base / 1e6
    k_time, m_time = keel.median("seconds"), mlflow.median("seconds")
    both = correct["keel"] and correct["mlflow"]
    how = f"median of {rounds} cold builds, alternating"
    report.add(Measure(
        name="container image size", unit="MB", keel=k_size, mlflow=m_size,
        correct=both,
        note=f"podman image inspect Size, base included ({base / 1e6:,.0f} MB, a local "
        f"stand-in of {found['base_name']}, the same for both)",
    ))  # fmt: skip
    report.add(Measure(
        name="container image size over the base", unit="MB", keel=k_added, mlflow=m_added,
        target=m_added * SIZE_FACTOR, correct=both,
        note="image size minus the shared base's; MLflow's would also keep pip's download "
        f"cache (~{found['mlflow_downloaded_bytes'] / 1e6:,.0f} MB downloaded) where PyPI's "
        "responses are cacheable, which they are not through this machine's proxy",
    ))  # fmt: skip
    report.add(Measure(
        name="container build, cold", unit="s", keel=k_time, mlflow=m_time,
        target=m_time * TIME_FACTOR, correct=both,
        note=f"{how}; keel: keel container build (context "
        f"{statistics.median(b.parts.get('context_seconds', 0) for b in keel.builds):.1f} s + "
        f"podman build {statistics.median(b.parts.get('build_seconds', 0) for b in keel.builds):.1f}"
        " s); MLflow: generate-dockerfile + podman build --isolation=chroot --no-cache; both "
        "download from PyPI, none of this machine's local wheels or caches",
    ))  # fmt: skip
    report.details["container"] = {
        "base": found["base"],
        "base_stands_in_for": found["base_name"],
        "base_bytes": base,
        "keel": _side_json(keel),
        "mlflow": _side_json(mlflow),
        "mlflow_pip_downloaded_bytes": found["mlflow_downloaded_bytes"],
        "mlflow_dockerfile": found["mlflow_dockerfile"],
        "size_ratio": k_size / m_size,
        "added_ratio": k_added / m_added if m_added else None,
        "time_ratio": k_time / m_time,
    }
    console.print(
        f"[dim]container: keel {k_size:,.0f} MB ({k_added:,.0f} over the base) in "
        f"{k_time:.1f} s; MLflow {m_size:,.0f} MB ({m_added:,.0f}) in {m_time:.1f} s[/dim]"
    )
    return report.details["container"]


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "builds": [{"seconds": b.seconds, "bytes": b.size, **b.parts} for b in side.builds],
        "requirements": side.requirements,
        "layers": side.layers,
        "prediction": side.prediction,
        "error": side.error,
    }
