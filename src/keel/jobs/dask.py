"""``dask``: jobs run on a Dask distributed cluster; their records stay on this machine.

:meth:`DaskExecutor.submit` writes the job's folder exactly as the local executor does (see
:mod:`keel.jobs.files`) and starts ``python -m keel.jobs.dask_job watch FOLDER`` on this
machine. That watcher connects to the scheduler, submits the job as one Dask task and
mirrors what the task reports (status, log, run id, outcome) into the folder. So
``keel jobs list/show/cancel``, the server's pages and any other process read a Dask job
the way they read a local one, and cancel it the same way (a ``cancel`` file, which the
watcher hands to the worker through a Dask ``Event``).

On the worker the task runs keel's job supervisor (:mod:`keel.jobs.worker`) in a
subprocess, as the local executor does: the time limit and cancellation stop the job's
whole process group, which a thread on the worker could not do. What the job needs must be
reachable from the workers: keel and the model's libraries installed, the project folder
at the same path (a shared folder) and a store they can reach (PostgreSQL and ``s3://``
artifacts, or an embedded store on a shared folder).

``dask`` and ``distributed`` are imported only by the watcher and the worker
(``pip install 'keel[dask]'``); this module stays light.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from keel.errors import ConfigError, ExecutorUnavailable
from keel.jobs.base import Job, JobSpec
from keel.jobs.local import LocalExecutor
from keel.jobs.settings import ENV_SCHEDULER

if TYPE_CHECKING:
    from keel.config.models import JobsSection

DEFAULT_CONNECT_TIMEOUT_S = 10.0
INSTALL_HINT = "pip install 'keel[dask]' (dask[distributed,dataframe])"


class DaskExecutor(LocalExecutor):
    """Jobs as Dask tasks on the cluster at ``scheduler``.

    Args:
        jobs_dir: the folder of the job records on this machine (made by the first submit).
        scheduler: the scheduler's address (``tcp://host:8786``); default: env
            ``KEEL_DASK_SCHEDULER``. Needed to submit, not to read or cancel jobs.
        connect_timeout_s: how long to wait for the scheduler.
        partition_mb: the size of the pieces :func:`keel.jobs.batch_predict` splits a CSV
            source into.
        env: names of environment variables (or prefixes ending in ``*``) sent with each
            job (keel.yml's ``jobs.env``): on the worker, a job gets the worker's own
            environment, the job's store settings and these.

    Example:
        >>> ex = DaskExecutor(".keel/jobs", scheduler="tcp://127.0.0.1:8786")  # doctest: +SKIP
        >>> job = ex.submit(JobSpec("keel.jobs.tasks:train", {"config": "/src/keel.yml"}))
        >>> ex.wait(job.id).status
        'finished'
    """

    name = "dask"

    def __init__(
        self,
        jobs_dir: str | os.PathLike[str],
        scheduler: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        partition_mb: float = 64.0,
        env: Sequence[str] = (),
    ) -> None:
        super().__init__(jobs_dir, max_parallel=1, env=env)
        self.scheduler = scheduler or os.environ.get(ENV_SCHEDULER) or None
        self.connect_timeout_s = float(connect_timeout_s)
        self.partition_mb = float(partition_mb)

    def __repr__(self) -> str:
        return f"DaskExecutor({str(self.jobs_dir)!r}, scheduler={self.scheduler!r})"

    @classmethod
    def from_settings(cls, settings: JobsSection, jobs_dir: Path) -> DaskExecutor:
        return cls(
            jobs_dir,
            # the environment first, as for every keel setting
            scheduler=os.environ.get(ENV_SCHEDULER) or settings.scheduler,
            connect_timeout_s=settings.connect_timeout_s,
            partition_mb=settings.partition_mb,
            env=settings.env,
        )

    # --- submit ----------------------------------------------------------------------

    def address(self) -> str:
        """The scheduler's address (a :class:`~keel.errors.ConfigError` when none is set)."""
        if not self.scheduler:
            raise ConfigError(
                "the dask executor needs a scheduler: set jobs.scheduler in keel.yml "
                f"(e.g. tcp://10.0.0.5:8786) or {ENV_SCHEDULER}"
            )
        return self.scheduler

    def check_reachable(self) -> str:
        """The scheduler's address, once something answers there (one-line error if not)."""
        address = self.address()
        check_reachable(address, self.connect_timeout_s)
        return address

    def submit(self, spec: JobSpec) -> Job:
        self.check_reachable()  # fail here, not minutes later in the job's record
        # The watcher sends the worker the variables the spec names: jobs.env's go along.
        named = self.environment.named()
        if named:
            spec = dataclasses.replace(spec, env={**named, **spec.env})
        return super().submit(spec)

    def _command(self, folder: Path) -> list[str]:
        return [
            sys.executable,
            "-P",
            "-m",
            "keel.jobs.dask_job",
            "watch",
            str(folder),
            self.address(),
            f"{self.connect_timeout_s:g}",
        ]

    def connect(self) -> Any:
        """A ``distributed.Client`` on the scheduler (close it when done)."""
        return connect(self.check_reachable(), self.connect_timeout_s)


def check_reachable(address: str, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to a ``tcp://host:port`` scheduler; other schemes
    are left to Dask. Raises :class:`~keel.errors.ExecutorUnavailable` in one line."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return
    bad = ConfigError(f"{address!r} is not a Dask scheduler address (tcp://host:8786)")
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        raise bad from None
    if not host:
        raise bad
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ExecutorUnavailable(unreachable(address, exc)) from None


def unreachable(address: str, exc: BaseException) -> str:
    """The one line said when the scheduler at ``address`` does not answer."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot reach the Dask scheduler at {address} ({reason}): check that "
        "`dask scheduler` runs there, the address and port (jobs.scheduler in keel.yml or "
        f"{ENV_SCHEDULER}), and that no firewall blocks it"
    )


def connect(address: str, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> Any:
    """A ``distributed.Client`` on ``address`` (not made the default client)."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(f"the dask executor needs dask distributed: {INSTALL_HINT}") from None
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorUnavailable(unreachable(address, exc)) from None
