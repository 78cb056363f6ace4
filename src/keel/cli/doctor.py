"""``keel doctor``: check a deployment and say what is wrong (a thin caller of
:func:`keel.server.doctor.diagnose`)."""

from __future__ import annotations

import sys

import click

from keel.cli import State, _print_json, cli, pass_state

DOCTOR_EXAMPLES = """\b
Examples:
  keel doctor
  keel doctor --replicas 3 --json
  KEEL_STORE=postgresql://keel@db/keel KEEL_ARTIFACTS=s3://ml/keel keel doctor
"""

STYLE = {"ok": "green", "warning": "yellow", "error": "bold red", "skipped": "dim"}


@cli.command("doctor", epilog=DOCTOR_EXAMPLES)
@click.option("--artifacts", help="Artifact store URL (default: env KEEL_ARTIFACTS, keel.yml).")
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    help="How many keel server replicas share the store (more than one: the session "
    "secret must be set).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each connection.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def doctor(
    state: State, artifacts: str | None, replicas: int | None, timeout: float, as_json: bool
) -> None:
    """Check the config, the metadata store and its schema, the admin users, the artifact
    store, the local folders, the session secret and the Dask scheduler.

    Each check is a row: ok, warning, error or skipped, with what to do when it is not ok.
    Nothing is created or migrated. The exit code is 1 when any check is an error.
    """
    from keel.server.doctor import diagnose

    diagnosis = diagnose(
        state.config, store=state.store, artifacts=artifacts, replicas=replicas, timeout_s=timeout
    )
    if as_json:
        _print_json(diagnosis.to_json())
    else:
        _print_table(diagnosis)
    if not diagnosis.ok:
        sys.exit(1)


def _print_table(diagnosis: object) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from keel.server.doctor import Diagnosis

    assert isinstance(diagnosis, Diagnosis)
    table = Table(title="keel doctor", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("found", overflow="fold")
    table.add_column("what to do", overflow="fold")
    for check in diagnosis.checks:
        style = STYLE.get(check.status, "")
        table.add_row(check.name, Text(check.status, style=style), check.detail, check.fix)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    console.print(diagnosis.summary(), style="bold red" if not diagnosis.ok else "green")
