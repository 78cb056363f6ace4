"""``local``: each job in processes of its own on this machine, its state in files.

:meth:`LocalExecutor.submit` writes the job's folder (see :mod:`keel.jobs.files`) and starts
``python -m keel.jobs.worker supervise`` in a new session, its stdout and stderr going to the
job's log, with the environment :mod:`keel.jobs.environment` allows (never all of this
process's: a server's holds its session key). The supervisor does the rest (slot, time
limit, cancellation, outcome), so every web worker, and every server replica sharing the
folder, reads the same state from ``job.json`` and cancels by leaving a ``cancel`` file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import NotFound
from keel.jobs.base import Executor, Job, JobSpec, check_job_id
from keel.jobs.environment import JobEnvironment
from keel.jobs.files import (
    CANCEL_FILE,
    JOB_FILE,
    LOG_FILE,
    PROGRESS_FILE,
    SPEC_FILE,
    read_json,
    touch,
    write_json,
)

if TYPE_CHECKING:
    from keel.config.models import JobsSection


class LocalExecutor(Executor):
    """Jobs as local processes.

    Args:
        jobs_dir: the folder of the job folders (created by the first submit: reading
            jobs creates nothing).
        max_parallel: how many jobs run at once; the others wait as ``queued``
            (default: the number of CPUs).
        env: names of environment variables (or prefixes ending in ``*``) a job gets
            besides the allow-list of :mod:`keel.jobs.environment` (keel.yml's ``jobs.env``).
    """

    name = "local"

    def __init__(
        self,
        jobs_dir: str | os.PathLike[str],
        max_parallel: int | None = None,
        env: Sequence[str] = (),
    ) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 1)
        self.environment = JobEnvironment(names=tuple(env))

    def __repr__(self) -> str:
        return f"LocalExecutor({str(self.jobs_dir)!r}, max_parallel={self.max_parallel})"

    @classmethod
    def from_settings(cls, settings: JobsSection, jobs_dir: Path) -> LocalExecutor:
        return cls(jobs_dir, max_parallel=settings.max_parallel, env=settings.env)

    # --- submit ----------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Job:
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True)
        log_path = folder / LOG_FILE
        job = Job(
            id=job_id,
            name=spec.name or spec.target,
            target=spec.target,
            labels=dict(spec.labels),
            timeout_s=spec.timeout_s,
            log_path=str(log_path),
            executor=self.name,
        )
        write_json(folder / SPEC_FILE, spec.to_json())
        write_json(folder / JOB_FILE, job.to_json())
        # Not this process's environment (a server's holds its session key): the allow-list.
        env = self.environment.build(spec.env)
        with log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    self._command(folder),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(folder),
                    start_new_session=True,  # the server's signals (Ctrl-C) do not reach it
                )
            except OSError as exc:
                job.status, job.error, job.ended_at = "failed", f"cannot start: {exc}", time.time()
                write_json(folder / JOB_FILE, job.to_json())
                return job
        # Reap the supervisor when it ends (no zombie), and catch one that died early.
        threading.Thread(
            target=self._reap, args=(proc, folder), name=f"keel-job-{job_id}", daemon=True
        ).start()
        return job

    def _command(self, folder: Path) -> list[str]:
        """The process that looks after the job (its stdout and stderr are the job's log)."""
        return [
            sys.executable,
            "-P",  # the job's folder is never an import path
            "-m",
            "keel.jobs.worker",
            "supervise",
            str(folder),
            str(self.max_parallel),
        ]

    def _reap(self, proc: subprocess.Popen[bytes], folder: Path) -> None:
        code = proc.wait()
        self._fail_if_unfinished(
            folder, f"the job's supervisor ended (code {code}) before recording an outcome"
        )

    # --- read ------------------------------------------------------------------------

    def _folder(self, job_id: str) -> Path:
        folder = self.jobs_dir / check_job_id(job_id)
        if not (folder / JOB_FILE).is_file():
            raise NotFound(f"no job {job_id!r}")
        return folder

    def _read(self, folder: Path) -> Job:
        data = read_json(folder / JOB_FILE)
        if data is None:
            raise NotFound(f"job {folder.name!r} has no readable record")
        job = Job.from_json(data)
        if not job.done:
            progress = read_json(folder / PROGRESS_FILE) or {}
            job.run_id = job.run_id or progress.get("run_id")
            job.cancel_requested = (folder / CANCEL_FILE).exists()
        return job

    def status(self, job_id: str) -> Job:
        folder = self._folder(job_id)
        job = self._read(folder)
        if not job.done and job.pid and not _alive(job.pid, job.host, folder.name):
            self._fail_if_unfinished(folder, "the job's supervisor process is gone")
            job = self._read(folder)
        return job

    def _fail_if_unfinished(self, folder: Path, reason: str) -> None:
        # Read again: the supervisor may have recorded the outcome just before it ended.
        data = read_json(folder / JOB_FILE) or {}
        if data.get("status") in ("queued", "running"):
            runner = data.get("runner_pid")
            if runner and _alive(runner, data.get("host"), folder.name):
                # Unsupervised, it would run on with no time limit and no one to record it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(runner, signal.SIGKILL)
                reason += "; its processes were stopped"
            data.update(status="failed", error=reason, ended_at=time.time())
            write_json(folder / JOB_FILE, data)

    def logs(self, job_id: str, tail_bytes: int | None = None) -> str:
        path = self._folder(job_id) / LOG_FILE
        try:
            with path.open("rb") as handle:
                if tail_bytes is not None:
                    size = handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, size - tail_bytes))
                data = handle.read()
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", errors="replace")

    def list(self, labels: dict[str, str] | None = None, limit: int | None = None) -> list[Job]:
        jobs = []
        # Job ids start with their creation time: name order is age order.
        if not self.jobs_dir.is_dir():
            return jobs
        for folder in sorted(self.jobs_dir.iterdir(), key=lambda p: p.name, reverse=True):
            if folder.name.startswith(".") or not (folder / JOB_FILE).is_file():
                continue
            try:
                job = self._read(folder)
            except NotFound:
                continue
            if labels and any(job.labels.get(k) != v for k, v in labels.items()):
                continue
            jobs.append(job)
            if limit is not None and len(jobs) >= limit:
                break
        return jobs

    # --- cancel ----------------------------------------------------------------------

    def cancel(self, job_id: str) -> Job:
        folder = self._folder(job_id)
        job = self._read(folder)
        if job.done:
            return job
        touch(folder / CANCEL_FILE, "cancel requested")
        job.cancel_requested = True
        return job


def _alive(pid: int, host: str | None, job_id: str) -> bool:
    """Whether the supervisor ``pid`` of ``job_id`` still runs (True when it cannot be told:
    another host, or no ``/proc`` to tell a reused pid from ours)."""
    if host and host != socket.gethostname():
        return True
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z" and job_id.encode() in cmdline
    if Path("/proc/self").is_dir():
        return False  # /proc works and has no such pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
