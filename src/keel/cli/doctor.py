"""``keel doctor``: check a deployment and say what is wrong (a thin caller of
:func:`keel.server.doctor.diagnose`); with ``--repair``, also clear what killed writers
left behind (a thin caller of :func:`keel.tracking.repair.repair`)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import click

from keel.cli import State, _print_json, cli, pass_state

DOCTOR_EXAMPLES = """\b
Examples:
  keel doctor
  keel doctor --replicas 3 --json
  keel doctor --repair --grace 600
  KEEL_STORE=postgresql://keel@db/keel KEEL_ARTIFACTS=s3://ml/keel keel doctor
"""

STYLE = {"ok": "green", "warning": "yellow", "error": "bold red", "skipped": "dim"}
#: the checks that must not be errors for --repair to run (the others do not matter to it)
REPAIR_NEEDS = ("config", "metadata store", "schema", "artifact store")


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
@click.option(
    "--repair",
    is_flag=True,
    help="Also find and clear what killed writers left: partial uploads (the artifact "
    "store's, and the server work folder's that no upload holds) and unreferenced "
    "blobs older than --grace, and runs left running by a process of this host that is "
    "gone (marked killed); and check that every model version's files are complete.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    help="With --repair: spare partial uploads and unreferenced blobs younger than this "
    "many seconds (writes in flight).",
)
@click.option("--dry-run", is_flag=True, help="With --repair: only say what would be cleared.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def doctor(
    state: State,
    artifacts: str | None,
    replicas: int | None,
    timeout: float,
    repair: bool,
    grace: float,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Check the config, the metadata store and its schema, the admin users, the artifact
    store, the local folders, the session secret and the Dask scheduler.

    Each check is a row: ok, warning, error or skipped, with what to do when it is not ok.
    Nothing is created or migrated. The exit code is 1 when any check is an error.

    With --repair, once the stores pass their checks, a second table says what was found
    and cleared (a model version never needs clearing: its row is committed only after all
    its files are stored). Repairing is safe to repeat: a second run finds nothing. The exit
    code is 0 once repaired, 1 when a check is an error or a model version's files are
    incomplete (that needs a person: the table says which).
    """
    from keel.server.doctor import diagnose

    diagnosis = diagnose(
        state.config, store=state.store, artifacts=artifacts, replicas=replicas, timeout_s=timeout
    )
    from keel.cli.ml2p import ml2p_checks  # an ML2P project: its model and AWS-only keys

    extra = ml2p_checks(state.config)
    if extra:
        diagnosis = dataclasses.replace(diagnosis, checks=(*diagnosis.checks, *extra))
    report = None
    # Only a store that exists and is at this keel's schema is repaired (nothing is made).
    stores_ok = all(c.status == "ok" for c in diagnosis.checks if c.name == "schema") and all(
        c.status != "error" for c in diagnosis.checks if c.name in REPAIR_NEEDS
    )
    if repair and stores_ok:
        from keel.tracking.repair import repair as run_repair

        report = run_repair(_client(state, artifacts), grace_seconds=grace, dry_run=dry_run)
        _repair_uploads(state, artifacts, report, grace, dry_run)
    if as_json:
        found = diagnosis.to_json()
        if repair:
            found["repair"] = report.to_json() if report is not None else None
        _print_json(found)
    else:
        _print_table(diagnosis)
        if report is not None:
            _print_repair(report)
        elif repair:
            click.echo(
                "not repaired: the config, the stores and the schema must pass first", err=True
            )
    if not diagnosis.ok or (report is not None and not report.ok):
        sys.exit(1)


def _repair_uploads(
    state: State, artifacts: str | None, report: Any, grace: float, dry_run: bool
) -> None:
    """The server's partial uploads (its work folder's uploads/) join the report's."""
    from keel.server.doctor import sweep_partial_uploads

    sweep = sweep_partial_uploads(
        state.config, store=state.store, artifacts=artifacts, grace_seconds=grace, dry_run=dry_run
    )
    report.partial_uploads = sorted(
        [*report.partial_uploads, *(str(p.path) for p in sweep.left_over)]
    )
    if not dry_run:
        report.removed_partials += len(sweep.removed)


def _client(state: State, artifacts: str | None) -> Any:
    if artifacts is None:
        return state.client
    from keel.tracking.client import Client

    return Client(
        store=state.store, artifacts=artifacts, project=state.project, config=state.config
    )


def _print_repair(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    title = "keel doctor --repair" + (" (dry run: nothing changed)" if report.dry_run else "")
    table = Table(title=title, title_justify="left")
    table.add_column("leftover", no_wrap=True)
    table.add_column("found", justify="right")
    table.add_column("cleared", justify="right")
    table.add_column("note", overflow="fold")
    for what, found, cleared, note in report.rows():
        table.add_row(what, str(found), str(cleared), note)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    if not report.ok:
        console.print("some model versions are incomplete: see above", style="bold red")
    elif report.found:
        verb = "would be cleared" if report.dry_run else "cleared"
        console.print(f"repaired: {report.found} leftover(s) {verb}", style="green")
    else:
        console.print("nothing to repair", style="green")


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
