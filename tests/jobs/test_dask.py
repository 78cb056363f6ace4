"""The dask executor on a real Dask cluster (a ``LocalCluster`` on 127.0.0.1, two worker
processes): a job's outcome, log and exit code; its time limit and cancellation stop the
job's processes on the worker; records any process reads; an unreachable scheduler in one
line; ``keel train`` and ``keel batch-predict`` of the iris example give the local executor's
results; ``keel jobs list/show/cancel``; the platform server runs pipeline jobs on the
cluster and lists them. No mocks."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from keel import Client
from keel.errors import ConfigError, ExecutorUnavailable
from keel.jobs import JobSpec, batch_predict, executor_type, get_executor
from keel.jobs.dask import DaskExecutor
from keel.jobs.local import LocalExecutor
from test_cli import keel

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WAIT_S = 120.0

JOB_CODE = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def ok(x=1):
        print("hello", x, flush=True)
        return {"x": x, "cwd": os.getcwd(), "secret": os.environ.get("JOB_SECRET")}

    def boom():
        print("about to fail", flush=True)
        raise ValueError("boom here")

    def sleeps(seconds=60, child_file=None):
        if child_file:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            with open(child_file, "w") as out:
                out.write(str(child.pid))
        print("sleeping", flush=True)
        time.sleep(seconds)
    """
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from distributed import LocalCluster

    made = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("code")
    (folder / "daskjobcode.py").write_text(JOB_CODE)
    return folder


@pytest.fixture
def executor(
    tmp_path: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaskExecutor]:
    monkeypatch.setenv("KEEL_JOB_KILL_GRACE_S", "1")  # the watcher's wait past a time limit
    ex = DaskExecutor(tmp_path / "jobs", scheduler=cluster.scheduler_address)
    yield ex
    for job in ex.list():  # leave nothing running
        if not job.done:
            ex.cancel(job.id)
            ex.wait(job.id, timeout_s=30)


def spec(code: Path, target: str, **kwargs: Any) -> JobSpec:
    env = {"PYTHONPATH": str(code), "KEEL_JOB_KILL_GRACE_S": "1", **kwargs.pop("env", {})}
    return JobSpec(f"daskjobcode:{target}", env=env, **kwargs)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for_log(ex: DaskExecutor, job_id: str, text: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while text not in ex.logs(job_id):
        assert time.monotonic() < deadline, ex.logs(job_id)
        time.sleep(0.1)


# --------------------------------------------------------------------------- the executor


def test_jobs_succeed_fail_and_time_out_on_the_cluster(
    executor: DaskExecutor, code: Path, tmp_path: Path
) -> None:
    assert executor_type("dask") is DaskExecutor
    child_file = tmp_path / "child.pid"
    ok = executor.submit(spec(code, "ok", args={"x": 3}, name="hi", env={"JOB_SECRET": "s3"}))
    boom = executor.submit(spec(code, "boom"))
    slow = executor.submit(spec(code, "sleeps", args={"child_file": str(child_file)}, timeout_s=4))
    assert ok.status == "queued" and ok.executor == "dask" and ok.name == "hi"

    done = executor.wait(ok.id, timeout_s=WAIT_S)
    assert done.status == "finished", executor.logs(ok.id)
    assert done.exit_code == 0 and done.error is None
    assert done.result["x"] == 3 and done.result["secret"] == "s3"
    assert done.worker is not None and done.worker.startswith("tcp://127.0.0.1:")
    assert done.runner_pid is None  # the worker's pids are never copied here
    log = executor.logs(ok.id)
    assert "hello 3" in log and "submitted to the Dask cluster" in log
    stored = (executor.jobs_dir / ok.id / "spec.json").read_text()
    assert "s3" not in stored and "JOB_SECRET" in stored  # values only reach the process

    failed = executor.wait(boom.id, timeout_s=WAIT_S)
    assert failed.status == "failed" and failed.exit_code == 1
    assert failed.error == "ValueError: boom here"
    assert "raise ValueError" in (failed.traceback or "")
    assert "about to fail" in executor.logs(boom.id)

    timed_out = executor.wait(slow.id, timeout_s=WAIT_S)
    assert timed_out.status == "timed_out", executor.logs(slow.id)
    assert timed_out.error == "stopped after its 4 s time limit"
    assert "time limit" in executor.logs(slow.id)
    child = int(child_file.read_text())
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the job's child process survived the time limit"

    # another process (another web worker, `keel jobs`) reads the same records
    other = LocalExecutor(executor.jobs_dir)
    assert other.status(ok.id).status == "finished" and other.status(ok.id).executor == "dask"
    assert {j.id for j in other.list()} >= {ok.id, boom.id, slow.id}


def test_cancel_stops_running_and_queued_jobs(executor: DaskExecutor, code: Path) -> None:
    running = [executor.submit(spec(code, "sleeps")) for _ in range(2)]  # both worker threads
    for job in running:
        wait_for_log(executor, job.id, "sleeping")
    waiting = executor.submit(spec(code, "ok"))
    time.sleep(1.5)
    assert executor.status(waiting.id).status == "queued"
    asked = executor.cancel(waiting.id)
    assert asked.cancel_requested
    never = executor.wait(waiting.id, timeout_s=WAIT_S)
    assert never.status == "cancelled" and never.started_at is None
    assert "hello" not in executor.logs(waiting.id)

    # cancelled from another process: the file the watcher passes on to the worker
    LocalExecutor(executor.jobs_dir).cancel(running[0].id)
    stopped = executor.wait(running[0].id, timeout_s=WAIT_S)
    assert stopped.status == "cancelled" and stopped.error == "cancelled"
    executor.cancel(running[1].id)
    assert executor.wait(running[1].id, timeout_s=WAIT_S).status == "cancelled"
    assert executor.cancel(running[1].id).status == "cancelled"  # done: left as it is


def test_a_job_whose_worker_dies_fails_and_is_not_started_again(
    executor: DaskExecutor, code: Path, cluster: Any, tmp_path: Path
) -> None:
    import os
    import signal

    from distributed import Client as DaskClient

    child_file = tmp_path / "child.pid"
    job = executor.submit(spec(code, "sleeps", args={"child_file": str(child_file)}))
    wait_for_log(executor, job.id, "sleeping")
    worker = executor.status(job.id).worker
    with DaskClient(cluster.scheduler_address, set_as_default=False) as client:
        pids = client.run(os.getpid)
    os.kill(pids[worker], signal.SIGKILL)  # the worker process running the job dies
    done = executor.wait(job.id, timeout_s=WAIT_S)
    assert done.status == "failed", executor.logs(job.id)
    assert done.error == "the Dask worker running the job died; keel does not start a job twice"
    child = int(child_file.read_text())
    deadline = time.monotonic() + 15
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child), "the job kept running after its worker died"


def test_an_unreachable_or_missing_scheduler_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    ex = get_executor("dask", jobs_dir=tmp_path / "jobs", scheduler=f"tcp://127.0.0.1:{port}")
    with pytest.raises(ExecutorUnavailable) as caught:
        ex.submit(JobSpec("daskjobcode:ok"))
    message = str(caught.value)
    assert f"tcp://127.0.0.1:{port}" in message and "jobs.scheduler" in message
    assert "\n" not in message
    assert ex.list() == []  # nothing half-submitted
    with pytest.raises(ConfigError, match="needs a scheduler"):
        DaskExecutor(tmp_path / "jobs").submit(JobSpec("daskjobcode:ok"))


# --------------------------------------------------------------------------- iris


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, cluster: Any) -> Path:
    """The iris example with keel.yml's jobs: on the cluster, CSV pieces of ~1 kB (several
    partitions) and sources to batch-predict as CSV and as JSON lines (read here)."""
    project = tmp_path_factory.mktemp("iris") / "iris"
    shutil.copytree(EXAMPLES / "iris", project)
    pd.read_csv(project / "data/iris_train.csv").to_json(
        project / "data/score.jsonl", orient="records", lines=True
    )
    config = yaml.safe_load((project / "keel.yml").read_text())
    config["jobs"] = {
        "executor": "dask",
        "scheduler": cluster.scheduler_address,
        "partition_mb": 0.001,
        "timeout_s": 600,
    }
    config["datasources"]["big"] = {
        "type": "csv",
        "path": "data/iris_train.csv",
        "tags": ["predict"],
    }
    config["datasources"]["big_jsonl"] = {
        "type": "jsonl",
        "path": "data/score.jsonl",
        "tags": ["predict"],
    }
    for name in ("v1_local", "v2_local", "v2_dask", "v2_jsonl_dask", "v2_jsonl_local"):
        config["datasinks"][name] = {"type": "csv", "path": f"output/{name}.csv"}
    (project / "keel.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def ok_out(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_iris_trains_and_batch_predicts_the_same_on_dask_and_locally(
    iris: Path, cluster: Any
) -> None:
    on_dask = keel("train", "--json", cwd=iris)  # keel.yml: jobs on the cluster
    trained = json.loads(ok_out(on_dask))
    assert "on the dask executor" in on_dask.stderr and "started" in on_dask.stderr
    locally = json.loads(ok_out(keel("train", "--executor", "local", "--json", cwd=iris)))
    assert trained["version"] == 1 and locally["version"] == 2
    assert trained["metrics"] == locally["metrics"] and trained["metrics"]["accuracy"] > 0.8

    client = Client(store=str(iris / ".keel"), project="examples")
    try:
        for result, executor in ((trained, "dask"), (locally, "local")):
            run = client.get_run(result["run_id"])
            assert run.status == "finished"
            assert run.tags["job_executor"] == executor and run.tags["job_status"] == "finished"
            assert str(run.tags["job_exit_code"]) == "0" and run.tags["job"]
    finally:
        client.close()

    # the same predictions from the cluster as from this process, and from both versions
    on_cluster = json.loads(
        ok_out(
            keel(
                "batch-predict", "--source", "big", "--sink", "v2_dask", "--version", "2",
                "--json", cwd=iris,
            )
        )
    )  # fmt: skip
    assert on_cluster["rows"] == 120 and on_cluster["version"] == 2
    client = Client(store=str(iris / ".keel"), project="examples", config=iris / "keel.yml")
    dask_executor = DaskExecutor(
        iris / ".keel" / "jobs", scheduler=cluster.scheduler_address, partition_mb=0.001
    )
    try:
        run = client.get_run(on_cluster["run_id"])
        assert run.params["executor"] == "dask"
        assert run.params["partitioning"].startswith("dask dataframe of ")
        assert run.metrics["partitions"] > 1  # ~1 kB pieces of a ~4 kB file

        def predict(source: str, sink: str, version: int, executor: Any = None) -> int:
            return batch_predict(
                source, sink, f"@{version}", config=iris / "keel.yml", client=client,
                executor=executor, chunksize=50,
            ).rows  # fmt: skip

        assert predict("big", "v1_local", 1) == predict("big", "v2_local", 2) == 120
        # a source Dask cannot read: chunks read here, predicted on the workers
        assert predict("big_jsonl", "v2_jsonl_dask", 2, dask_executor) == 120
        assert predict("big_jsonl", "v2_jsonl_local", 2) == 120
    finally:
        client.close()
    out = iris / "output"
    assert (out / "v2_dask.csv").read_bytes() == (out / "v2_local.csv").read_bytes()
    assert (out / "v1_local.csv").read_bytes() == (out / "v2_local.csv").read_bytes()
    assert (out / "v2_jsonl_dask.csv").read_bytes() == (out / "v2_jsonl_local.csv").read_bytes()


def test_a_failing_train_job_fails_the_command_and_its_run(iris: Path, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    shutil.copytree(iris, project, ignore=shutil.ignore_patterns(".keel", "output"))
    (project / "data/iris_train.csv").write_text("sepal_length\n1.0\n")
    failed = keel("train", cwd=project)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train job ") and " failed: train failed: KeyError" in last
    assert "keel jobs show" in last
    job_id = last.split()[3]
    shown = json.loads(ok_out(keel("jobs", "show", job_id, "--json", cwd=project)))
    assert shown["status"] == "failed" and shown["exit_code"] == 1 and shown["executor"] == "dask"
    client = Client(store=str(project / ".keel"), project="examples")
    try:
        run = client.get_run(shown["run_id"])
        assert run.status == "failed" and run.tags["job_status"] == "failed"
        assert str(run.tags["job_exit_code"]) == "1" and run.tags["job_executor"] == "dask"
    finally:
        client.close()


def test_keel_jobs_lists_shows_and_cancels_dask_jobs(iris: Path, cluster: Any, code: Path) -> None:
    ex = DaskExecutor(iris / ".keel" / "jobs", scheduler=cluster.scheduler_address)
    job = ex.submit(spec(code, "sleeps", name="sleepy"))
    wait_for_log(ex, job.id, "sleeping")

    listed = json.loads(ok_out(keel("jobs", "list", "--status", "running", "--json", cwd=iris)))
    assert [j["id"] for j in listed] == [job.id]
    table = ok_out(keel("jobs", "list", cwd=iris))
    assert job.id in table and "sleepy" in table and "dask" in table
    shown = ok_out(keel("jobs", "show", job.id, cwd=iris))
    assert "running" in shown and "tcp://127.0.0.1:" in shown  # the worker

    cancelled = ok_out(keel("jobs", "cancel", job.id, "--wait", cwd=iris))
    assert f"cancel requested for job {job.id} (running)" in cancelled
    assert f"job {job.id} cancelled" in cancelled
    after = json.loads(ok_out(keel("jobs", "show", job.id, "--json", "--logs", cwd=iris)))
    assert after["status"] == "cancelled" and "sleeping" in after["log"]
    again = ok_out(keel("jobs", "cancel", job.id, cwd=iris))
    assert "already cancelled" in again

    missing = keel("jobs", "show", "20990101-000000-00000000", cwd=iris)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no job '20990101-000000-00000000'"


# --------------------------------------------------------------------------- the server


def test_the_server_runs_pipeline_jobs_on_the_cluster(tmp_path: Path, cluster: Any) -> None:
    from fastapi.testclient import TestClient

    from keel.config.models import JobsSection
    from keel.server.app import create_app
    from keel.server.executor import server_executor
    from keel.server.settings import ServerSettings

    jobs = JobsSection(executor="dask", scheduler=cluster.scheduler_address)
    app = create_app(
        ServerSettings(
            store=str(tmp_path / "store"), work_dir=tmp_path / "work", executor="dask", jobs=jobs
        )
    )
    accounts = app.state.accounts
    accounts.add_user("eddie", "correct-horse", "editor")
    accounts.add_user("vera", "correct-horse", "viewer")
    example = EXAMPLES / "mlopen_pipeline"
    with TestClient(app) as editor, TestClient(app) as viewer:
        editor.headers["Authorization"] = f"Bearer {accounts.create_token('eddie', 't')[1]}"
        viewer.headers["Authorization"] = f"Bearer {accounts.create_token('vera', 't')[1]}"
        made = editor.post(
            "/api/v1/pipelines",
            files=[
                ("control", ("mlopen_control.py", (example / "mlopen_control.py").read_bytes()))
            ],
        )
        assert made.status_code == 201, made.text
        csv = (example / "data" / "iris_train.csv").read_bytes()
        assert (
            editor.post("/api/v1/pipelines/inputs", files={"file": ("train.csv", csv)}).status_code
            == 201
        )
        submitted = editor.post(
            "/api/v1/pipelines/mlopen_control/train", json={"input": "train.csv"}
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + WAIT_S
        while (job := viewer.get(f"/api/v1/jobs/{job_id}").json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        log = viewer.get(f"/api/v1/jobs/{job_id}/logs").json()["log"]
        assert job["status"] == "finished", log
        assert job["executor"] == "dask" and job["worker"].startswith("tcp://127.0.0.1:")
        assert job["labels"]["app"] == "pipelines" and job["result"]["version"] == 1
        assert "submitted to the Dask cluster" in log
        assert job_id in [j["id"] for j in viewer.get("/api/v1/jobs").json()]
        page = viewer.get(f"/jobs/{job_id}")
        assert page.status_code == 200 and "tcp://127.0.0.1:" in page.text
        run = app.state.client.get_run(job["run_id"])
        assert run.tags["job_executor"] == "dask" and run.tags["job_status"] == "finished"
        assert isinstance(server_executor(app.state), DaskExecutor)
    app.state.client.close()
