"""``keel jobs list | show | cancel``, and running ``keel train`` (…) as a job.

Thin callers of :mod:`keel.jobs`. Job records are kept on this machine for every executor
(``jobs/`` beside an embedded store, or ``jobs.jobs_dir``), so the jobs the CLI, the
platform server and the Python API submit are all listed, shown and cancelled here.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from keel.cli import PrefixGroup, State, _pairs, _print_json, _table, cli, pass_state

if TYPE_CHECKING:
    from keel.config import Config
    from keel.jobs import Executor, Job
    from keel.tracking.settings import ClientSettings

JOBS_EXAMPLES = """\b
Examples:
  keel jobs list
  keel jobs list --status running --status queued --json
  keel jobs show 20260101-120000-1a2b3c4d --logs
  keel jobs show 20260101-120000-1a2b3c4d --follow
  keel jobs cancel 20260101-120000-1a2b3c4d --wait
  keel train --executor dask          # keel.yml: jobs: {executor: dask, scheduler: tcp://…}
"""

POLL_S = 0.25
#: how long a follower waits, after Ctrl-C, for the job it cancelled to stop
CANCEL_WAIT_S = 30.0


def _setup(state: State) -> tuple[Config, ClientSettings]:
    from keel.config import load_config
    from keel.tracking.settings import resolve_settings

    config = load_config(state.config)
    settings = resolve_settings(store=state.store, project=state.project, config_path=state.config)
    return config, settings


def _executor(state: State, name: str | None = None) -> Executor:
    from keel.jobs import executor_for

    config, settings = _setup(state)
    return executor_for(config, settings, name)


# --------------------------------------------------------------------------- keel jobs


@cli.group(cls=PrefixGroup, epilog=JOBS_EXAMPLES)
def jobs() -> None:
    """List, show and cancel jobs (train, retest, generate-dataset, pipelines).

    Jobs run where keel.yml's jobs: section says: local (a process per job, the default)
    or dask (a Dask cluster: jobs: {executor: dask, scheduler: tcp://host:8786}).
    """


def _took(job: Job) -> str:
    seconds = job.duration_s
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def _at(seconds: float | None) -> str:
    if not seconds:
        return ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--label")
        labels[key] = value
    return labels


@jobs.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Only jobs with this status: queued, running, finished, failed, cancelled or "
    "timed_out. Repeatable.",
)
@click.option(
    "--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only jobs with this label."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def jobs_list(
    state: State, statuses: tuple[str, ...], labels: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """List jobs, newest first."""
    from keel.jobs import JOB_STATUSES  # here: `keel --help` does not import keel.jobs

    unknown = [s for s in statuses if s not in JOB_STATUSES]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]!r} is not a job status ({', '.join(JOB_STATUSES)})",
            param_hint="--status",
        )
    executor = _executor(state)
    found = []
    for job in executor.list(labels=_parse_labels(labels) or None):
        if not statuses or job.status in statuses:
            found.append(job)
            if len(found) >= limit:
                break
    if as_json:
        return _print_json([job.to_json() for job in found])
    _table(
        f"jobs in {executor.jobs_dir}" if hasattr(executor, "jobs_dir") else "jobs",
        ["id", "status", "name", "executor", "submitted", "took", "run", "error"],
        (
            [
                j.id,
                j.status + (" (cancel requested)" if j.cancel_requested and not j.done else ""),
                j.name,
                j.executor,
                _at(j.created_at),
                _took(j),
                j.run_id,
                j.error,
            ]
            for j in found
        ),
    )
    return None


@jobs.command("show")
@click.argument("job_id")
@click.option("--logs", is_flag=True, help="Print the job's log (stdout and stderr) too.")
@click.option("--follow", "-f", is_flag=True, help="Print the log as it grows, until the job ends.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --logs: and the log).")
@pass_state
def jobs_show(state: State, job_id: str, logs: bool, follow: bool, as_json: bool) -> None:
    """Show a job: status, times, exit code, its run, error and traceback."""
    executor = _executor(state)
    job = executor.status(job_id)
    if as_json:
        data = job.to_json()
        if logs:
            data["log"] = executor.logs(job.id)
        return _print_json(data)
    _pairs(
        f"job {job.id}",
        {
            "status": job.status,
            "name": job.name,
            "target": job.target,
            "executor": job.executor,
            "worker": job.worker,
            "submitted": _at(job.created_at),
            "started": _at(job.started_at),
            "ended": _at(job.ended_at),
            "took": _took(job),
            "time limit": f"{job.timeout_s:g} s" if job.timeout_s else None,
            "exit code": job.exit_code,
            "run": job.run_id,
            "cancel requested": job.cancel_requested or None,
            "error": job.error,
            **{f"labels.{k}": v for k, v in job.labels.items()},
        },
    )
    if job.traceback:
        click.echo("traceback:\n" + job.traceback, err=True)
    if follow:
        follow_job(executor, job.id)
    elif logs:
        click.echo(executor.logs(job.id), nl=False)
    return None


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait until the job has stopped.")
@pass_state
def jobs_cancel(state: State, job_id: str, wait: bool) -> None:
    """Ask a queued or running job to stop (a job already done is left as it is)."""
    executor = _executor(state)
    job = executor.status(job_id)
    if job.done:
        click.echo(f"job {job.id} is already {job.status}: nothing to cancel")
        return
    executor.cancel(job.id)
    click.echo(f"cancel requested for job {job.id} ({job.status})")
    if wait:
        done = executor.wait(job.id, timeout_s=CANCEL_WAIT_S + 60)
        click.echo(f"job {done.id} {done.status}" + (f": {done.error}" if done.error else ""))


# --------------------------------------------------------------------------- commands as jobs


def job_options(func: Any) -> Any:
    """``--executor``, ``--in-process``, ``--detach`` and ``--timeout`` for a command that
    can run as a job."""
    options = [
        click.option(
            "--executor",
            "executor",
            metavar="NAME",
            help="Run as a job on this executor (local, dask, …). Default: keel.yml's "
            "jobs.executor when keel.yml has a jobs: section, else in this process.",
        ),
        click.option(
            "--in-process",
            "in_process",
            is_flag=True,
            help="Run in this process even when keel.yml has a jobs: section.",
        ),
        click.option(
            "--detach",
            is_flag=True,
            help="Submit the job, print its id and return (see keel jobs show ID).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            help="Stop the job after this many seconds (default: jobs.timeout_s).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def runs_as_job(state: State, executor: str | None, in_process: bool, detach: bool) -> bool:
    """Whether a command runs as a job: ``--executor`` given, or keel.yml has ``jobs:``."""
    from keel.config import load_config
    from keel.jobs.settings import is_configured

    if in_process:
        if executor:
            raise click.BadParameter("give --executor or --in-process, not both")
        if detach:
            raise click.BadParameter("--detach needs a job: drop --in-process")
        return False
    if executor or detach:
        return True
    return is_configured(load_config(state.config))


def run_command(
    state: State,
    command: str,
    args: dict[str, Any],
    executor_name: str | None,
    timeout_s: float | None,
    detach: bool,
) -> dict[str, Any] | None:
    """Run ``command`` as a job, its log shown on stderr as it runs; what the job returned,
    or None when detached. A job that does not finish is a :class:`~keel.jobs.JobFailed`."""
    from keel.jobs import JobFailed, executor_for, submit_command
    from keel.jobs.settings import jobs_section

    config, settings = _setup(state)
    executor = executor_for(config, settings, executor_name)
    limit = timeout_s or jobs_section(config).timeout_s
    job = submit_command(executor, command, config, settings, args, limit)
    if detach:
        click.echo(f"submitted {command} as job {job.id} to the {executor.name} executor", err=True)
        click.echo(job.id)
        return None
    click.echo(f"{command}: job {job.id} on the {executor.name} executor", err=True)
    done = follow_job(executor, job.id)
    if done.status != "finished":
        said = done.run_id and done.run_id in (done.error or "")
        run = f"; run {done.run_id}" if done.run_id and not said else ""
        status = done.status.replace("_", " ")
        raise JobFailed(
            f"{command} job {done.id} {status}: {done.error or 'no reason given'}{run} "
            f"(log: keel jobs show {done.id} --logs)",
            done,
        )
    return done.result if isinstance(done.result, dict) else {}


def follow_job(executor: Executor, job_id: str) -> Job:
    """Print the job's log to stderr as it grows until the job ends; Ctrl-C cancels it."""
    printed = 0

    def show_new() -> None:
        nonlocal printed
        text = executor.logs(job_id)
        if len(text) > printed:
            sys.stderr.write(text[printed:])
            sys.stderr.flush()
            printed = len(text)

    try:
        while True:
            job = executor.status(job_id)
            show_new()  # read after the status: a done job's log is complete
            if job.done:
                return job
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        click.echo(f"\ncancelling job {job_id} …", err=True)
        executor.cancel(job_id)
        job = executor.wait(job_id, timeout_s=CANCEL_WAIT_S)
        show_new()
        click.echo(f"job {job_id} {job.status}", err=True)
        raise click.exceptions.Abort() from None
