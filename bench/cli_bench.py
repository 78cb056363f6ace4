"""The CLI's own cost: ``keel`` commands as a user runs them, against what they cannot beat.

Each pair runs as subprocesses, alternating between the two ways, ``times`` times (median
shown), in a copy of ``examples/iris`` trained once:

- ``keel predict input.json`` vs a plain script that unpickles the same version's
  cloudpickle files (``code.cloudpickle``: the model object, its module pickled by value, so
  the same imports; ``fitted.cloudpickle``) and calls its ``predict`` on the same row
  (target ≤ 1.3×);
- ``keel runs list`` and ``keel models show iris`` vs ``python -c "import keel"``
  (target ≤ 2×);
- ``keel --help`` vs ``python -c pass``, a bare interpreter start (target ≤ 6×).

Wall time is what a user waits; the CPU time (user + system of the child) is shown beside it
because it moves less when other work shares the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bench.report import Measure, Report

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iris"

PLAIN_PREDICT = """\
import json
import pickle
import sys

with open({code!r}, "rb") as handle:
    model = pickle.load(handle)
with open({fitted!r}, "rb") as handle:
    fitted = pickle.load(handle)
with open(sys.argv[1], encoding="utf-8") as handle:
    row = json.load(handle)
print(json.dumps(model.predict(None, fitted, row), indent=2))
"""


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[Sample, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu), done.stdout


def _project(root: Path, env: dict[str, str], keel: str) -> tuple[Path, Path]:
    """A trained copy of examples/iris and the plain script that predicts with its version."""
    project = root / "cli-iris"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".keel", "output"))
    _run([keel, "train"], project, env)
    from keel.tracking.client import Client

    client = Client(store=str(project / ".keel"), config=project / "keel.yml")
    folder = client.get_model_artifact(client.get_model_version("iris@latest"))
    script = project / "plain_predict.py"
    script.write_text(
        PLAIN_PREDICT.format(
            code=str(folder / "code.cloudpickle"), fitted=str(folder / "fitted.cloudpickle")
        )
    )
    return project, script


def _pair(
    keel_argv: list[str], peer_argv: list[str], cwd: Path, env: dict[str, str], times: int
) -> tuple[list[Sample], list[Sample], str, str]:
    """Both commands ``times`` times after one untimed run each, alternating the order."""
    _, keel_out = _run(keel_argv, cwd, env)
    _, peer_out = _run(peer_argv, cwd, env)
    keel_samples, peer_samples = [], []
    for i in range(times):
        first_keel = i % 2 == 0
        for is_keel in (first_keel, not first_keel):
            sample, _ = _run(keel_argv if is_keel else peer_argv, cwd, env)
            (keel_samples if is_keel else peer_samples).append(sample)
    return keel_samples, peer_samples, keel_out, peer_out


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(s, field) for s in samples) * 1000


def run(root: Path, report: Report, console: Console, times: int) -> None:
    bin_dir = Path(sys.executable).parent
    keel = str(bin_dir / "keel") if (bin_dir / "keel").exists() else shutil.which("keel") or "keel"
    python = sys.executable
    # no status line (stderr is a pipe anyway); the same store and project for every command
    env = {**os.environ, "KEEL_NO_STATUS": "1"}
    for name in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
        env.pop(name, None)
    project, script = _project(root, env, keel)
    cases = [
        (
            "keel predict (one iris row)",
            [keel, "predict", "input.json"],
            [python, str(script), "input.json"],
            "plain script unpickling the version",
            1.3,
        ),
        (
            "keel runs list",
            [keel, "runs", "list"],
            [python, "-c", "import keel"],
            "import keel",
            2.0,
        ),
        (
            "keel models show iris",
            [keel, "models", "show", "iris"],
            [python, "-c", "import keel"],
            "import keel",
            2.0,
        ),
        ("keel --help", [keel, "--help"], [python, "-c", "pass"], "python -c pass", 6.0),
    ]
    for title, keel_argv, peer_argv, peer, factor in cases:
        keel_samples, peer_samples, keel_out, peer_out = _pair(
            keel_argv, peer_argv, project, env, times
        )
        correct = True
        if "predict" in keel_argv:
            correct = json.loads(keel_out) == json.loads(peer_out)
            if not correct:
                report.problems.append(
                    f"{title}: keel printed {keel_out!r}, the script {peer_out!r}"
                )
        k, p = _median(keel_samples, "wall"), _median(peer_samples, "wall")
        k_cpu, p_cpu = _median(keel_samples, "cpu"), _median(peer_samples, "cpu")
        console.print(
            f"[dim]cli, {title}: keel {k:.0f} ms ({k_cpu:.0f} ms CPU), {peer} {p:.0f} ms "
            f"({p_cpu:.0f} ms CPU): {k / p:.2f}× wall, {k_cpu / p_cpu:.2f}× CPU "
            f"(target ≤ {factor:g}×)[/dim]"
        )
        report.details.setdefault("cli", {})[title] = {
            "keel_ms": k,
            "peer_ms": p,
            "keel_cpu_ms": k_cpu,
            "peer_cpu_ms": p_cpu,
            "ratio_wall": k / p,
            "ratio_cpu": k_cpu / p_cpu,
            "target_ratio": factor,
        }
        report.add(
            Measure(
                name=title,
                unit="ms",
                keel=k,
                mlflow=p,
                target=p * factor,
                correct=correct,
                note=f"median of {times} subprocess runs, alternating; {k / p:.2f}× wall, "
                f"{k_cpu / p_cpu:.2f}× CPU; target ≤ {factor:g}×",
                peer=peer,
            )
        )
