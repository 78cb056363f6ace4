"""``keel train``, ``keel retest`` and ``keel generate-dataset`` as jobs.

:func:`submit_command` turns a command and its arguments into a :class:`~keel.jobs.JobSpec`
and submits it to an executor; :func:`train`, :func:`retest` and :func:`generate_dataset`
are the job targets, called in the job's process (on this machine or a Dask worker). They
call :mod:`keel.lifecycle` as the command does in-process and return what its ``--json``
prints, so a job's ``result`` reads like the command's output.

The job finds its store through its environment (``KEEL_STORE``, ``KEEL_ARTIFACTS``,
``KEEL_PROJECT``, made absolute here), and the environment variables keel.yml reads
(``${VAR}``, ``*_var``) are passed along by name: their values reach the job's process and
are never written to its files. The run a job starts is tagged with the job's id and, when
the job ends, with its status and exit code (``job_status``, ``job_exit_code``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.config import Config
    from keel.jobs.base import Executor, Job
    from keel.lifecycle.training import RetestResult, TrainResult
    from keel.tracking.client import Client
    from keel.tracking.handles import DatasetApi
    from keel.tracking.settings import ClientSettings

#: the commands that run as jobs, and their targets
TARGETS = {
    "train": "keel.jobs.tasks:train",
    "retest": "keel.jobs.tasks:retest",
    "generate-dataset": "keel.jobs.tasks:generate_dataset",
}
#: the label that marks jobs of keel's commands (the server's pipelines use "pipelines")
APP_LABEL = "cli"

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


# --------------------------------------------------------------------------- submitting


def submit_command(
    executor: Executor,
    command: str,
    config: Config,
    settings: ClientSettings,
    args: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Job:
    """Submit ``command`` (``train``, ``retest`` or ``generate-dataset``) with keyword
    ``args`` of its target (:func:`train` …) as a job on ``executor``.

    Example:
        >>> from keel.config import load_config
        >>> from keel.tracking.settings import resolve_settings
        >>> config, settings = load_config("keel.yml"), resolve_settings(config_path="keel.yml")
        >>> ex = keel.jobs.executor_for(config, settings)                      # doctest: +SKIP
        >>> job = submit_command(ex, "train", config, settings, {"fresh": True})
        >>> ex.wait(job.id).result["version"]
        3
    """
    from keel.jobs.base import JobSpec

    if command not in TARGETS:
        raise ConfigError(f"{command!r} does not run as a job; these do: {', '.join(TARGETS)}")
    if config.path is None:
        raise ConfigError(f"{command} needs keel.yml ({config.describe()})")
    model = config.settings.model.name if config.settings.model is not None else None
    spec = JobSpec(
        target=TARGETS[command],
        args={"config": str(config.path.resolve()), **(args or {})},
        name=f"{command} {model}" if model else command,
        cwd=str(Path.cwd()),
        timeout_s=timeout_s,
        env=job_env(config, settings),
        labels={"app": APP_LABEL, "command": command, **({"model": model} if model else {})},
    )
    return executor.submit(spec)


def job_env(config: Config | None, settings: ClientSettings) -> dict[str, str]:
    """The environment a job needs to find the store (absolute paths) and to read keel.yml
    (the variables it references, when they are set here; never the session key)."""
    from keel.jobs.environment import SECRET_KEY_VAR
    from keel.tracking.settings import embedded_folder

    env = {
        "KEEL_STORE": absolute_store(settings.store),
        "KEEL_ARTIFACTS": absolute_store(settings.artifacts),
        "KEEL_PROJECT": settings.project,
    }
    if os.environ.get("KEEL_TOKEN"):  # a keel server as the store
        env["KEEL_TOKEN"] = os.environ["KEEL_TOKEN"]
    options = getattr(settings, "storage_options", None)
    if options:  # the artifact store's endpoint and credentials (never written to files)
        import json

        env["KEEL_STORAGE_OPTIONS"] = json.dumps(dict(options))
    # The cache goes along when it is the store's or was chosen; a home folder is the
    # worker's own business.
    if os.environ.get("KEEL_CACHE_DIR") or embedded_folder(settings.store) is not None:
        env["KEEL_CACHE_DIR"] = str(settings.cache_dir)
    if config is not None:
        # server.secret_key_var is read by `keel server`, never by a job: it stays here
        withheld = {SECRET_KEY_VAR, config.settings.server.secret_key_var}
        for name in sorted(referenced_variables(config.snapshot()) - withheld):
            if name in os.environ and name not in env:
                env[name] = os.environ[name]
    return env


def absolute_store(url: str) -> str:
    """A store or artifact location that means the same from any working folder."""
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            return "sqlite:///" + str(Path(path).expanduser().resolve())
    if url.startswith("file://"):
        return "file://" + str(Path(url[len("file://") :]).expanduser().resolve())
    return url


def referenced_variables(snapshot: Any) -> set[str]:
    """The environment variables a config snapshot reads (``${VAR}``, ``key_var: VAR``)."""
    found: set[str] = set()
    if isinstance(snapshot, dict):
        for key, value in snapshot.items():
            if isinstance(key, str) and key.endswith("_var") and isinstance(value, str):
                found.add(value)
            found |= referenced_variables(value)
    elif isinstance(snapshot, list):
        for item in snapshot:
            found |= referenced_variables(item)
    elif isinstance(snapshot, str):
        found.update(_ENV_REFERENCE.findall(snapshot))
    return found


# --------------------------------------------------------------------------- what the CLI prints


def train_summary(result: TrainResult) -> dict[str, Any]:
    """What ``keel train --json`` prints."""
    mv = result.version
    return {
        "model": mv.model,
        "version": mv.version,
        "label": mv.label,
        "run_id": result.run.id,
        "content_hash": mv.content_hash,
        "metrics": result.metrics,
        "superseded": result.superseded,
    }


def retest_summary(result: RetestResult) -> dict[str, Any]:
    """What ``keel retest --json`` prints."""
    mv = result.version
    return {
        "model": mv.model,
        "version": mv.version,
        "run_id": result.run.id,
        "metrics": result.metrics,
    }


def dataset_summary(dataset: DatasetApi) -> dict[str, Any]:
    """What ``keel generate-dataset --json`` prints."""
    return {
        "name": dataset.name,
        "version": dataset.version,
        "content_hash": dataset.content_hash,
        "run_id": dataset.run_id,
    }


# --------------------------------------------------------------------------- job side


def job_client(config: str | None = None) -> Client:
    """The store client of a job (from its environment): each run it starts is tagged with
    the job's id and reported to the job at once, and the job's outcome is tagged on it
    when the job ends."""
    from keel.jobs import current_job_id, report
    from keel.tracking.client import Client

    class JobClient(Client):
        def start_run(self, *args: Any, **kwargs: Any) -> Any:
            job_id = current_job_id()
            if job_id:
                kwargs["tags"] = {**(kwargs.get("tags") or {}), "job": job_id}
            run = super().start_run(*args, **kwargs)
            report(run_id=run.id, record_on_run=True)
            return run

    return JobClient(config=config)


def _plain(value: Any) -> Any:
    """JSON-safe (metrics may hold numpy numbers, NaN stays NaN)."""
    import json

    return json.loads(json.dumps(value, default=_default, allow_nan=True))


def _default(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def train(
    *, config: str, dataset: str | None = None, fresh: bool = False, test: bool = True
) -> dict[str, Any]:
    """Job target of ``keel train``."""
    from keel.lifecycle.training import train as train_model

    client = job_client(config)
    try:
        result = train_model(config, dataset=dataset, client=client, fresh=fresh, test=test)
        return _plain(train_summary(result))
    finally:
        client.close()


def retest(*, config: str, ref: str | None = None) -> dict[str, Any]:
    """Job target of ``keel retest``."""
    from keel.lifecycle.training import retest as retest_model

    client = job_client(config)
    try:
        return _plain(retest_summary(retest_model(config, ref, client=client)))
    finally:
        client.close()


def generate_dataset(*, config: str, name: str | None = None) -> dict[str, Any]:
    """Job target of ``keel generate-dataset``."""
    from keel.lifecycle.datasets import generate_dataset as generate

    client = job_client(config)
    try:
        return _plain(dataset_summary(generate(config, name, client=client)))
    finally:
        client.close()
