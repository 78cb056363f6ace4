"""``keel train / retest / generate-dataset`` as jobs of the local executor (keel.yml's
``jobs:`` section or ``--executor``), their logs on stderr, the job's outcome tagged on the
run, a failing or timed-out job's one line and exit code; ``--in-process``, ``--detach``;
``keel jobs list / show / cancel``. Without a ``jobs:`` section the commands run in the
command's own process, as before."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from keel import Client
from keel.jobs.local import LocalExecutor
from test_cli import keel

MODEL = """
import sys
import time

import keel


class Ratio(keel.Model):
    def train(self, ctx):
        df = ctx.sources["train"].get_dataframe()
        print("training on", len(df), "rows", file=sys.stderr, flush=True)
        if ctx.params.get("sleep"):
            time.sleep(ctx.params["sleep"])
        if ctx.params.get("fail"):
            raise ValueError("bad data: " + ctx.params["fail"])
        return {"ratio": float((df["y"] / df["x"]).mean())}

    def evaluate(self, ctx, fitted):
        df = ctx.sources["test"].get_dataframe()
        return {"mae": float((df["x"] * fitted["ratio"] - df["y"]).abs().mean())}

    def predict(self, ctx, fitted, inputs):
        return {"y": inputs["x"] * fitted["ratio"]}

    def generate_dataset(self, ctx):
        return ctx.sources["train"].get_dataframe()
"""

CONFIG = """\
project: jobs
model: {{name: ratio, module: ratio_model, params: {params}}}
datasources:
  train: {{type: csv, path: data.csv, tags: [train, dataset]}}
  test: {{type: csv, path: data.csv, tags: [test]}}
{jobs}"""


def make(root: Path, jobs: str = "jobs:\n  executor: local\n", params: str = "{}") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratio_model.py").write_text(MODEL)
    (root / "data.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    (root / "keel.yml").write_text(CONFIG.format(jobs=jobs, params=params))
    return root


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def runs(root: Path) -> Client:
    return Client(store=str(root / ".keel"), project="jobs")


def test_commands_run_as_jobs_when_keel_yml_says_so(tmp_path: Path) -> None:
    root = make(tmp_path / "p")
    trained = keel("train", "--json", cwd=root)
    result = json.loads(ok(trained))
    assert result["version"] == 1 and result["metrics"] == {"mae": 0.0}
    assert "train: job " in trained.stderr and "on the local executor" in trained.stderr
    assert "training on 3 rows" in trained.stderr  # the job's log, as it runs
    retested = json.loads(ok(keel("retest", "--json", cwd=root)))
    assert retested["version"] == 1 and retested["metrics"] == {"mae": 0.0}
    dataset = json.loads(ok(keel("generate-dataset", "--json", cwd=root)))
    assert dataset["name"] == "ratio" and dataset["version"] == 1
    text = ok(keel("train", cwd=root))  # the same table as in-process
    assert "registered ratio version 2 from run " in text and "mae" in text

    jobs = json.loads(ok(keel("jobs", "list", "--json", cwd=root)))
    assert [j["labels"]["command"] for j in jobs] == [
        "train",
        "generate-dataset",
        "retest",
        "train",
    ]
    assert all(j["status"] == "finished" and j["executor"] == "local" for j in jobs)
    client = runs(root)
    try:
        run = client.get_run(result["run_id"])
        assert run.tags["job"] == jobs[-1]["id"] and run.tags["job_status"] == "finished"
        assert str(run.tags["job_exit_code"]) == "0" and run.tags["job_executor"] == "local"
        # --in-process: here, not a job
        here = json.loads(ok(keel("train", "--in-process", "--json", cwd=root)))
        assert "job" not in client.get_run(here["run_id"]).tags
    finally:
        client.close()
    assert len(json.loads(ok(keel("jobs", "list", "--json", cwd=root)))) == 4
    conflict = keel("train", "--in-process", "--executor", "local", cwd=root)
    assert conflict.returncode == 2 and "not both" in conflict.stderr


def test_without_a_jobs_section_commands_run_in_process(tmp_path: Path) -> None:
    root = make(tmp_path / "p", jobs="")
    done = keel("train", "--json", cwd=root)
    assert json.loads(ok(done))["version"] == 1 and "job" not in done.stderr
    assert ok(keel("jobs", "list", cwd=root)).strip().endswith("jobs: none")
    as_job = keel("train", "--executor", "local", "--json", cwd=root)  # asked for
    assert json.loads(ok(as_job))["version"] == 2 and "on the local executor" in as_job.stderr


def test_a_failing_job_fails_the_command_in_one_line_and_tags_its_run(tmp_path: Path) -> None:
    root = make(tmp_path / "p", params="{fail: no y column}")
    failed = keel("train", cwd=root)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train job ") and "failed: train failed: ValueError: bad" in last
    assert last.endswith("--logs)")
    job = json.loads(ok(keel("jobs", "list", "--status", "failed", "--json", cwd=root)))[0]
    assert job["exit_code"] == 1 and "ValueError: bad data: no y column" in job["traceback"]
    client = runs(root)
    try:
        run = client.get_run(job["run_id"])
        assert run.status == "failed" and run.tags["job_status"] == "failed"
        assert str(run.tags["job_exit_code"]) == "1"
    finally:
        client.close()


@pytest.mark.slow
def test_time_limits_detached_jobs_show_and_cancel(tmp_path: Path) -> None:
    root = make(tmp_path / "p", params="{sleep: 60}")
    # long enough for the job to start its run on a busy machine, far less than its sleep
    timed = keel("train", "--timeout", "20", cwd=root)
    assert timed.returncode == 1
    assert "timed out: stopped after its 20 s time limit" in timed.stderr.strip().splitlines()[-1]
    job = json.loads(ok(keel("jobs", "list", "--json", cwd=root)))[0]
    client = runs(root)
    try:
        run = client.get_run(job["run_id"])
        assert run.status == "killed" and run.tags["job_status"] == "timed_out"
    finally:
        client.close()

    detached = keel("train", "--detach", cwd=root)
    job_id = ok(detached).strip()
    assert f"submitted train as job {job_id}" in detached.stderr
    records = LocalExecutor(root / ".keel" / "jobs")
    deadline = time.monotonic() + 60
    while "training on 3 rows" not in records.logs(job_id):
        assert time.monotonic() < deadline, records.logs(job_id)
        time.sleep(0.1)
    cancelled = ok(keel("jobs", "cancel", job_id, "--wait", cwd=root))
    assert f"cancel requested for job {job_id}" in cancelled
    assert f"job {job_id} cancelled" in cancelled
    shown = ok(keel("jobs", "show", job_id, "--logs", cwd=root))
    assert "cancelled" in shown and "training on 3 rows" in shown  # the record, then the log
    followed = keel("jobs", "show", job_id, "--follow", cwd=root)
    assert followed.returncode == 0 and f"job {job_id} cancelled" in followed.stderr


def test_keel_jobs_help_has_examples(tmp_path: Path) -> None:
    text = ok(keel("jobs", "--help", cwd=tmp_path))
    assert "Examples:" in text and "keel jobs cancel" in text
    for command in ("list", "show", "cancel"):
        assert ok(keel("jobs", command, "--help", cwd=tmp_path))
    assert "--executor" in ok(keel("train", "--help", cwd=tmp_path))
    bad = keel("jobs", "show", "../x", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: '../x' is not a job id"
