"""The local executor: a job's outcome, log and exit code; its time limit stops the whole
process tree; cancellation; state any process can read; the executor registry."""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.errors import ConfigError, InvalidInput, NotFound
from keel.jobs import JobSpec, executor_type, get_executor, known_executors
from keel.jobs.local import LocalExecutor

JOB_CODE = textwrap.dedent(
    """
    import os, subprocess, sys, time

    def ok(x=1):
        print("hello", x, flush=True)
        return {"x": x, "cwd": os.getcwd(), "secret": os.environ.get("JOB_SECRET")}

    def boom():
        print("about to fail", flush=True)
        raise ValueError("boom here")

    def exits(code=3):
        print("leaving", flush=True)
        os._exit(code)

    def reports(run_id="r-1"):
        from keel.jobs import current_job_id, report
        report(run_id=run_id)
        return current_job_id()

    def sleeps(seconds=60, child_file=None):
        if child_file:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            with open(child_file, "w") as out:
                out.write(str(child.pid))
        print("sleeping", flush=True)
        time.sleep(seconds)
    """
)


@pytest.fixture
def executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalExecutor]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "jobcode.py").write_text(JOB_CODE)
    monkeypatch.setenv("PYTHONPATH", str(code))  # the job processes import jobcode from here
    monkeypatch.setenv("KEEL_JOB_KILL_GRACE_S", "1")
    ex = LocalExecutor(tmp_path / "jobs", max_parallel=2)
    yield ex
    for job in ex.list():  # leave nothing running
        if not job.done:
            ex.cancel(job.id)
            ex.wait(job.id, timeout_s=10)


def _gone(pid: int) -> bool:
    """The process ended (a zombie waiting for its parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_job_that_succeeds_reports_its_result_and_log(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    spec = JobSpec("jobcode:ok", {"x": 3}, name="say hello", env={"JOB_SECRET": "s3cret"})
    job = executor.submit(spec)
    assert job.status == "queued" and job.name == "say hello"
    done = executor.wait(job.id, timeout_s=30)
    assert done.status == "finished", executor.logs(job.id)
    assert done.exit_code == 0 and done.error is None
    assert done.result["x"] == 3 and done.result["secret"] == "s3cret"
    assert done.result["cwd"] == str(tmp_path / "jobs" / job.id / "work")  # its own scratch
    assert done.started_at and done.ended_at and done.ended_at >= done.started_at
    assert "hello 3" in executor.logs(job.id)
    # environment values reach the process but are never written down
    stored = (tmp_path / "jobs" / job.id / "spec.json").read_text()
    assert "s3cret" not in stored and "JOB_SECRET" in stored


def test_a_failing_job_has_its_error_exit_code_traceback_and_log(
    executor: LocalExecutor,
) -> None:
    failed = executor.wait(executor.submit(JobSpec("jobcode:boom")).id, timeout_s=30)
    assert failed.status == "failed"
    assert failed.exit_code == 1
    assert failed.error == "ValueError: boom here"
    assert "raise ValueError" in (failed.traceback or "")
    log = executor.logs(failed.id)
    assert "about to fail" in log and "ValueError: boom here" in log

    exited = executor.wait(executor.submit(JobSpec("jobcode:exits", {"code": 7})).id, 30)
    assert exited.status == "failed" and exited.exit_code == 7
    assert exited.error == "the job's process exited with code 7"

    missing = executor.wait(executor.submit(JobSpec("jobcode:nothing_here")).id, 30)
    assert missing.status == "failed" and "no function 'nothing_here'" in (missing.error or "")


def test_the_time_limit_stops_the_job_and_every_process_it_started(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    child_file = tmp_path / "child.pid"
    spec = JobSpec("jobcode:sleeps", {"child_file": str(child_file)}, timeout_s=1.5)
    started = time.monotonic()
    job = executor.wait(executor.submit(spec).id, timeout_s=30)
    assert job.status == "timed_out"
    assert job.error == "stopped after its 1.5 s time limit"
    assert time.monotonic() - started < 15
    assert job.traceback is None  # the stop is not a failure of the job's code
    child = int(child_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the job's child process survived the time limit"
    assert "time limit" in executor.logs(job.id)


def test_cancel_stops_a_running_job(executor: LocalExecutor) -> None:
    job = executor.submit(JobSpec("jobcode:sleeps"))
    deadline = time.monotonic() + 20
    while "sleeping" not in executor.logs(job.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    asked = executor.cancel(job.id)
    assert asked.cancel_requested
    done = executor.wait(job.id, timeout_s=15)
    assert done.status == "cancelled" and done.error == "cancelled"
    assert executor.cancel(job.id).status == "cancelled"  # a done job stays as it is


def test_a_queued_job_waits_for_a_slot_and_can_be_cancelled_before_it_starts(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    one_at_a_time = LocalExecutor(executor.jobs_dir, max_parallel=1)
    busy = one_at_a_time.submit(JobSpec("jobcode:sleeps"))
    deadline = time.monotonic() + 20
    while one_at_a_time.status(busy.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = one_at_a_time.submit(JobSpec("jobcode:ok"))
    time.sleep(0.5)
    assert one_at_a_time.status(waiting.id).status == "queued"
    one_at_a_time.cancel(waiting.id)
    assert one_at_a_time.wait(waiting.id, timeout_s=10).status == "cancelled"
    assert one_at_a_time.status(waiting.id).started_at is None
    one_at_a_time.cancel(busy.id)
    assert one_at_a_time.wait(busy.id, timeout_s=10).status == "cancelled"


def test_any_process_reads_the_same_state(executor: LocalExecutor, tmp_path: Path) -> None:
    job = executor.wait(executor.submit(JobSpec("jobcode:reports", labels={"a": "1"})).id, 30)
    assert job.status == "finished" and job.run_id == "r-1" and job.result == job.id
    other = LocalExecutor(tmp_path / "jobs")  # e.g. another web worker
    assert other.status(job.id).run_id == "r-1"
    assert [j.id for j in other.list(labels={"a": "1"})] == [job.id]
    assert other.list(labels={"a": "2"}) == []
    record = json.loads((tmp_path / "jobs" / job.id / "job.json").read_text())
    assert record["status"] == "finished"


def test_a_dead_supervisor_is_noticed(executor: LocalExecutor, tmp_path: Path) -> None:
    job = executor.submit(JobSpec("jobcode:sleeps"))
    deadline = time.monotonic() + 20
    while executor.status(job.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    running = executor.status(job.id)
    pid = running.pid
    # a running job always names its runner, so a reader can stop it (CI once saw it unset)
    assert pid is not None and running.runner_pid is not None
    os.kill(pid, 9)  # the supervisor dies without recording anything
    deadline = time.monotonic() + 10
    while not executor.status(job.id).done and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = executor.status(job.id)
    assert gone.status == "failed" and "supervisor" in (gone.error or "")
    # Who stops the runner is a race: the runner ends itself when it sees its supervisor
    # gone, or the reader kills it first (and then says so). Either way it must be gone.
    assert gone.runner_pid is not None
    deadline = time.monotonic() + 5
    while not _gone(gone.runner_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(gone.runner_pid), "the unsupervised job kept running"


def test_unknown_and_malformed_job_ids(executor: LocalExecutor) -> None:
    with pytest.raises(NotFound):
        executor.status("20990101-000000-deadbeef")
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(InvalidInput):
            executor.status(bad)


def test_specs_are_checked() -> None:
    with pytest.raises(InvalidInput, match="module:function"):
        JobSpec("not a target")
    with pytest.raises(InvalidInput, match="positive"):
        JobSpec("a.b:c", timeout_s=0)


def test_the_registry(tmp_path: Path) -> None:
    assert "local" in known_executors()
    assert executor_type("local") is LocalExecutor
    assert isinstance(get_executor("local", jobs_dir=tmp_path / "j"), LocalExecutor)
    with pytest.raises(ConfigError, match="unknown executor 'nope'"):
        executor_type("nope")
