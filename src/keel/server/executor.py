"""The executor of a platform server: one per app, shared by the pipelines and the jobs pages.

Made on first use from :class:`~keel.server.settings.ServerSettings` (``executor``, keel.yml's
``jobs:`` section, ``jobs_dir``), so a server with ``jobs: {executor: dask, scheduler: …}``
runs its pipeline jobs on that cluster and lists them where ``keel jobs`` does. Its jobs get
the allow-listed environment of :mod:`keel.jobs.environment` and ``jobs.env``, never the
variable holding the session key, and cannot read the server's own environment either.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.jobs import Executor, Job
    from keel.server.settings import ServerSettings
    from keel.tracking.client import Client

_lock = threading.Lock()


def server_executor(state: Any) -> Executor:
    """The executor of the app whose ``state`` this is (made on first use)."""
    executor = getattr(state, "executor", None)
    if executor is None:
        with _lock:
            executor = getattr(state, "executor", None)
            if executor is None:
                executor = make_executor(state.settings, state.client)
                state.executor = executor
    return executor


def make_executor(settings: ServerSettings, client: Client) -> Executor:
    from keel.config.models import JobsSection
    from keel.jobs import executor_type
    from keel.jobs.environment import hide_environment

    # Jobs run as this process's user, who may read /proc/<this pid>/environ, where the
    # session key is: no longer, from before the first job starts.
    hide_environment()

    section = settings.jobs or JobsSection(executor=settings.executor)
    work_dir = Path(settings.work_dir or client.settings.cache_dir / "server")
    jobs_dir = Path(settings.jobs_dir) if settings.jobs_dir else work_dir / "jobs"
    executor = executor_type(settings.executor).from_settings(section, jobs_dir)
    executor.environment = executor.environment.withholding(session_key_variables(settings))
    return executor


def session_key_variables(settings: ServerSettings) -> list[str]:
    """The environment variables holding the server's session key (``KEEL_SECRET_KEY``, or
    the one ``server.secret_key_var`` names): found by value, so no job gets them."""
    return [name for name, value in os.environ.items() if value and value == settings.secret_key]


def find_jobs(executor: Executor, statuses: list[str], limit: int) -> list[Job]:
    """The newest jobs with one of ``statuses`` (any status when empty)."""
    found = []
    for job in executor.list():
        if not statuses or job.status in statuses:
            found.append(job)
            if len(found) >= limit:
                break
    return found
