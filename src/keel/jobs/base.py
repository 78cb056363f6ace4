"""The executor interface: where work that must not run in the caller's process goes.

An :class:`Executor` takes a :class:`JobSpec` (a ``module:function`` to call with JSON
arguments, a working folder, a time limit, environment variables) and answers with a
:class:`Job` record it keeps up to date: queued → running → finished | failed | cancelled |
timed_out. Executors are looked up by name in :mod:`keel.jobs` (``local`` is built in); a new
one implements the five abstract methods here and registers itself.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from keel.errors import InvalidInput, KeelError
from keel.jobs.environment import JobEnvironment

if TYPE_CHECKING:
    from keel.config.models import JobsSection

#: every status a job can have, in the order a job goes through them
JOB_STATUSES = ("queued", "running", "finished", "failed", "cancelled", "timed_out")
#: the statuses a job never leaves
TERMINAL_JOB_STATUSES = frozenset({"finished", "failed", "cancelled", "timed_out"})

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_job_id(job_id: str) -> str:
    """``job_id`` if it can name a job (ids come from URLs: never a path)."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id) or ".." in job_id:
        raise InvalidInput(f"{job_id!r} is not a job id")
    return job_id


class JobFailed(KeelError):
    """A job ended without finishing (failed, timed out or cancelled): ``job`` says how."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job
        self.run_id = job.run_id


@dataclass(frozen=True)
class JobSpec:
    """What to run.

    Args:
        target: ``"package.module:function"``, called as ``function(**args)`` in the job's
            process; what it returns (JSON) becomes the job's ``result``.
        args: keyword arguments, JSON-serialisable.
        name: a title for people (``train iris``).
        cwd: the working folder (None: a scratch folder of the job).
        timeout_s: stop the job after this many seconds of running (None: no limit).
        memory_mb: the most address space the job's process may take, in MiB (None: no
            limit). An allocation beyond it fails (Python raises ``MemoryError``) and the
            job fails saying it exceeded the limit. POSIX only (``RLIMIT_AS``).
        env: extra environment variables. Their values are handed to the process only,
            never written to the job's files (they may hold credentials). The job gets
            these, not the environment of the process that submits it: only its
            allow-list (see :mod:`keel.jobs.environment`) and keel.yml's ``jobs.env``.
        labels: free-form strings to find jobs by (``{"pipeline": "iris"}``).
    """

    target: str
    args: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    cwd: str | None = None
    timeout_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    memory_mb: int | None = None

    def __post_init__(self) -> None:
        if not _TARGET.match(self.target):
            raise InvalidInput(f"job target {self.target!r}: expected 'package.module:function'")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise InvalidInput(f"job timeout must be positive, got {self.timeout_s}")
        if self.memory_mb is not None and not self.memory_mb > 0:
            raise InvalidInput(f"job memory limit must be positive, got {self.memory_mb} MB")

    def to_json(self) -> dict[str, Any]:
        """The spec as stored: environment values left out."""
        data = asdict(self)
        data["env"] = sorted(self.env)
        return data


@dataclass
class Job:
    """A job as its executor last saw it.

    ``error`` is one line for people (``ValueError: boom``, ``stopped after its 30 s time
    limit``); ``traceback`` the full text when the job's code raised; ``run_id`` the keel run
    the job reported (see :func:`keel.jobs.report`); ``result`` what the function returned.
    """

    id: str
    status: str = "queued"
    name: str = ""
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    traceback: str | None = None
    run_id: str | None = None
    result: Any = None
    log_path: str | None = None
    pid: int | None = None  # the supervising process
    runner_pid: int | None = None  # the process running the function (its group's leader)
    host: str | None = None
    cancel_requested: bool = False
    executor: str = ""
    worker: str | None = None  # where the job ran, when not on this machine (a Dask worker)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Executor(ABC):
    """Runs :class:`JobSpec` s away from the caller and reports on them."""

    #: the name the executor is registered under
    name: ClassVar[str] = ""
    #: what a job's process may inherit from the process that starts it: an executor that
    #: starts processes builds their environment with ``self.environment.build(spec.env)``
    environment: JobEnvironment = JobEnvironment()

    @classmethod
    def from_settings(cls, settings: JobsSection, jobs_dir: Path) -> Executor:
        """The executor keel.yml's ``jobs:`` section describes; ``jobs_dir`` is where job
        records are kept. The default passes ``jobs_dir`` and ``jobs.options``."""
        return cls(jobs_dir=jobs_dir, **settings.options)  # type: ignore[call-arg]

    @abstractmethod
    def submit(self, spec: JobSpec) -> Job:
        """Start (or queue) ``spec``; returns at once with the new job."""

    @abstractmethod
    def status(self, job_id: str) -> Job:
        """The job as it is now (:class:`~keel.errors.NotFound` if unknown)."""

    @abstractmethod
    def logs(self, job_id: str, tail_bytes: int | None = None) -> str:
        """What the job wrote to stdout and stderr (the last ``tail_bytes`` only, if given)."""

    @abstractmethod
    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop; a job already done is returned unchanged."""

    @abstractmethod
    def list(self, labels: dict[str, str] | None = None, limit: int | None = None) -> list[Job]:
        """Jobs, newest first, those carrying all ``labels`` only."""

    def wait(self, job_id: str, timeout_s: float | None = None, poll_s: float = 0.1) -> Job:
        """Block until the job is done (or ``timeout_s`` passes) and return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.status(job_id)
            if job.done or (deadline is not None and time.monotonic() >= deadline):
                return job
            time.sleep(poll_s)

    def close(self) -> None:  # noqa: B027  (optional: most executors hold nothing)
        """Release what the executor holds (not the jobs: they keep running)."""
