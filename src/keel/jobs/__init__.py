"""Where work runs: executors by name, and what a job's code may tell its executor.

``get_executor("local", jobs_dir=...)`` gives the built-in :class:`~keel.jobs.local.LocalExecutor`
(one process group per job on this machine), ``get_executor("dask", jobs_dir=...,
scheduler="tcp://host:8786")`` the :class:`~keel.jobs.dask.DaskExecutor` (jobs on a Dask
cluster, their records here); :func:`executor_for` the one keel.yml's ``jobs:`` section
names. :func:`submit_command` runs ``train``, ``retest`` or ``generate-dataset`` as a job and
:func:`batch_predict` predicts a data source on the executor's cluster.

Other executors register with :func:`register_executor` or the ``keel.executors`` entry point
group (name = executor name, value = ``module:Class``). The interface they implement is in
:mod:`keel.jobs.base`.

Code running inside a job calls :func:`report` to attach what it knows early (its keel run
id) so the job's page can point at the run before the job ends.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from keel.errors import ConfigError
from keel.jobs.base import (
    JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    Executor,
    Job,
    JobFailed,
    JobSpec,
)

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_JOB_STATUSES",
    "Executor",
    "Job",
    "JobFailed",
    "JobSpec",
    "batch_predict",
    "current_job_id",
    "executor_for",
    "executor_type",
    "get_executor",
    "known_executors",
    "register_executor",
    "report",
    "submit_command",
]

#: functions of the submodules, imported on first use (``import keel.jobs`` stays light)
_LAZY = {
    "batch_predict": "keel.jobs.batch",
    "executor_for": "keel.jobs.settings",
    "submit_command": "keel.jobs.tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


ENTRY_POINT_GROUP = "keel.executors"
#: built-ins, imported only when asked for (``import keel.jobs`` stays light)
BUILTIN = {"local": "keel.jobs.local:LocalExecutor", "dask": "keel.jobs.dask:DaskExecutor"}

X = TypeVar("X", bound=type[Executor])

_registry: dict[str, type[Executor]] = {}
_lock = threading.Lock()
_entry_points_read = False


def register_executor(name: str) -> Callable[[X], X]:
    """Class decorator: serve executor ``name`` with this class."""

    def decorate(cls: X) -> X:
        _registry[name] = cls
        return cls

    return decorate


def executor_type(name: str) -> type[Executor]:
    """The executor class registered as ``name``."""
    found = _registry.get(name)
    if found is None and name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        found = _registry.setdefault(name, getattr(importlib.import_module(module), attr))
    if found is None:
        _read_entry_points()
        found = _registry.get(name)
    if found is None:
        raise ConfigError(
            f"unknown executor {name!r}; known: {', '.join(known_executors())} "
            f"(others come from the {ENTRY_POINT_GROUP} entry points)"
        )
    return found


def known_executors() -> list[str]:
    _read_entry_points()
    return sorted(set(_registry) | set(BUILTIN))


def get_executor(name: str = "local", **options: Any) -> Executor:
    """An executor of type ``name`` made with ``options`` (``jobs_dir=`` for ``local``)."""
    return executor_type(name)(**options)


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    from importlib.metadata import entry_points

    with _lock:
        if _entry_points_read:
            return
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            if entry.name in _registry:
                continue
            try:
                _registry[entry.name] = entry.load()
            except Exception as exc:  # a broken plugin must say which one
                raise ConfigError(
                    f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) cannot be "
                    f"loaded: {type(exc).__name__}: {exc}"
                ) from None
        _entry_points_read = True


def current_job_id() -> str | None:
    """The id of the job this code runs in (None outside a job)."""
    from keel.jobs.files import ENV_JOB_ID

    return os.environ.get(ENV_JOB_ID) or None


def report(**fields: Any) -> None:
    """Tell the executor something about the running job (``run_id=...``); a no-op outside
    a job. Values must be JSON."""
    from keel.jobs.files import ENV_JOB_DIR, PROGRESS_FILE, read_json, write_json

    folder = os.environ.get(ENV_JOB_DIR)
    if not folder:
        return
    path = Path(folder) / PROGRESS_FILE
    current = read_json(path) or {}
    current.update(fields)
    write_json(path, current)
