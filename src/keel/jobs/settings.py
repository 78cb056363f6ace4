"""From keel.yml's ``jobs:`` section to an executor, and where job records live.

The CLI (``keel train``, ``keel jobs``), the platform server and the Python API all get
their executor here, so a job submitted by one is listed and cancelled by the others.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.config import Config
    from keel.config.models import JobsSection
    from keel.jobs.base import Executor
    from keel.tracking.settings import ClientSettings

#: the Dask scheduler's address, read before keel.yml's ``jobs.scheduler``
ENV_SCHEDULER = "KEEL_DASK_SCHEDULER"
JOBS_FOLDER = "jobs"


def jobs_section(config: Config | None) -> JobsSection:
    """The ``jobs:`` section (its defaults when keel.yml has none); a
    :class:`~keel.errors.ConfigError` when its ``jobs.env`` names the session key."""
    from keel.config.models import JobsSection
    from keel.jobs.environment import check_jobs_env

    if config is not None:
        check_jobs_env(config)
    section = config.settings.jobs if config is not None else None
    return section if section is not None else JobsSection()


def is_configured(config: Config | None) -> bool:
    """Whether keel.yml has a ``jobs:`` section (commands then run as jobs). One that only
    lists ``env`` (what a server's pipeline jobs may receive) does not count."""
    if config is None or config.settings.jobs is None:
        return False
    return bool(config.settings.jobs.model_fields_set - {"env"})


def default_jobs_dir(settings: ClientSettings) -> Path:
    """``jobs/`` beside an embedded store (``./.keel/jobs``), else in the local cache."""
    from keel.tracking.settings import embedded_folder

    return (embedded_folder(settings.store) or settings.cache_dir) / JOBS_FOLDER


def jobs_dir_for(config: Config | None, settings: ClientSettings) -> Path:
    """Where job records live: ``jobs.jobs_dir`` (relative to keel.yml), else the default."""
    configured = jobs_section(config).jobs_dir
    if configured:
        path = Path(configured).expanduser()
        base = config.base_dir if config is not None else Path.cwd()
        return (path if path.is_absolute() else base / path).resolve()
    return default_jobs_dir(settings)


def executor_for(
    config: Config | None,
    settings: ClientSettings,
    name: str | None = None,
    jobs_dir: str | os.PathLike[str] | None = None,
) -> Executor:
    """The executor keel.yml's ``jobs:`` names (or ``name``), keeping records in
    ``jobs_dir`` (default: :func:`jobs_dir_for`). Nothing is connected to yet.

    An unknown name is a :class:`~keel.errors.ConfigError` naming the known ones (and the
    line of keel.yml that named it).
    """
    from keel.jobs import executor_type

    section = jobs_section(config)
    chosen = name or section.executor
    try:
        kind = executor_type(chosen)
    except ConfigError as exc:
        if name is None and config is not None and config.settings.jobs is not None:
            where = config.where(("jobs", "executor"))
            raise ConfigError(f"{where}: jobs.executor: {exc}") from None
        raise
    folder = Path(jobs_dir) if jobs_dir is not None else jobs_dir_for(config, settings)
    executor = kind.from_settings(section, folder)
    if config is not None:  # the session key keel.yml names stays out of jobs too
        executor.environment = executor.environment.withholding(
            [config.settings.server.secret_key_var]
        )
    return executor
