"""The executor of a platform server: one per app, shared by the pipelines and the jobs pages.

Made on first use from :class:`~keel.server.settings.ServerSettings` (``executor``, keel.yml's
``jobs:`` section, ``jobs_dir``), so a server with ``jobs: {executor: dask, scheduler: …}``
runs its pipeline jobs on that cluster and lists them where ``keel jobs`` does.
"""

from __future__ import annotations

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

    section = settings.jobs or JobsSection(executor=settings.executor)
    work_dir = Path(settings.work_dir or client.settings.cache_dir / "server")
    jobs_dir = Path(settings.jobs_dir) if settings.jobs_dir else work_dir / "jobs"
    return executor_type(settings.executor).from_settings(section, jobs_dir)


def find_jobs(executor: Executor, statuses: list[str], limit: int) -> list[Job]:
    """The newest jobs with one of ``statuses`` (any status when empty)."""
    found = []
    for job in executor.list():
        if not statuses or job.status in statuses:
            found.append(job)
            if len(found) >= limit:
                break
    return found
