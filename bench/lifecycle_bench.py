"""keel train + register of a model vs calling the same model functions directly.

The peer is the model code on its own: ``train`` then ``evaluate`` then a cloudpickle dump
to a file, which is what a script without keel does. keel adds the tracked run, params,
metrics, report, data fingerprints, config snapshot, the model files and the registered
version. Two models: a trivial one (keel's fixed cost) and one whose training takes two
seconds (the ≤ 10% target). Runs alternate between the two ways to even out machine noise.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from rich.console import Console

from bench.report import Measure, Report

MODEL = """
import time
import keel


class Sleepy(keel.Model):
    def train(self, ctx):
        rows = ctx.sources["train"].get_dataframe()
        time.sleep(ctx.params["seconds"])
        return {"mean": float(rows["x"].mean())}

    def evaluate(self, ctx, fitted):
        rows = ctx.sources["test"].get_dataframe()
        return {"mae": float((rows["x"] - fitted["mean"]).abs().mean())}

    def predict(self, ctx, fitted, inputs):
        return fitted["mean"]
"""


def _project(folder: Path, seconds: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "bench_sleepy.py").write_text(MODEL)
    (folder / "train.csv").write_text("x\n" + "\n".join(str(i) for i in range(1000)) + "\n")
    (folder / "test.csv").write_text("x\n" + "\n".join(str(i) for i in range(100)) + "\n")
    (folder / "keel.yml").write_text(
        "project: bench\n"
        f"model: {{name: sleepy, version: '1.0', module: bench_sleepy, params: {{seconds: {seconds}}}}}\n"
        "datasources:\n"
        "  train: {type: csv, path: train.csv, tags: [train]}\n"
        "  test: {type: csv, path: test.csv, tags: [test]}\n"
    )
    return folder


def _direct(project: Path, seconds: float) -> float:
    """The same model functions called by hand: read, train, evaluate, pickle to a file."""
    import cloudpickle

    from keel.lifecycle.project import Project

    started = time.perf_counter()
    proj = Project.open(project / "keel.yml")
    model = proj.model_code()
    ctx = proj.context("train", project, project)
    fitted = model.train(ctx)
    model.evaluate(proj.context("test", project, project), fitted)
    with (project / "direct.pkl").open("wb") as handle:
        cloudpickle.dump(fitted, handle)
    proj.close()
    return time.perf_counter() - started


def _keel(project: Path) -> float:
    from keel.lifecycle import train

    started = time.perf_counter()
    train(project / "keel.yml")
    return time.perf_counter() - started


def run(root: Path, report: Report, console: Console, times: int) -> None:
    from keel.tracking.client import Client  # noqa: F401  (imports paid before timing)

    for seconds, label in ((0.0, "trivial model"), (2.0, "2-second training")):
        project = _project(root / f"lifecycle-{seconds}", seconds)
        old = os.getcwd()
        os.chdir(project)  # the embedded store goes to ./.keel of the project
        try:
            _keel(project)  # warm-up: creates the store, imports everything once
            _direct(project, seconds)
            keel_times, direct_times = [], []
            for i in range(times):
                order = (_keel, _direct) if i % 2 == 0 else (_direct, _keel)
                for step in order:
                    took = step(project) if step is _keel else step(project, seconds)
                    (keel_times if step is _keel else direct_times).append(took)
        finally:
            os.chdir(old)
        k, d = statistics.median(keel_times), statistics.median(direct_times)
        overhead_ms = (k - d) * 1000
        console.print(
            f"[dim]lifecycle, {label}: keel {k * 1000:.0f} ms, direct {d * 1000:.0f} ms, "
            f"overhead {overhead_ms:.0f} ms ({(k - d) / d * 100:+.1f}%)[/dim]"
        )
        report.add(
            Measure(
                name=f"train + register, {label}",
                unit="ms",
                keel=k * 1000,
                mlflow=d * 1000,
                target=(d * 1000 + 150) if seconds == 0 else min(d * 1.1, d + 0.15) * 1000,
                note=f"median of {times}, alternating; overhead {overhead_ms:.0f} ms "
                f"({(k - d) / d * 100:+.1f}%); target ≤ 150 ms and ≤ 10%",
                peer="same functions called directly",
            )
        )
