"""``keel pipeline train | run``: an mlopen control file on an input file, from the shell.

What the platform server's pipeline jobs do (:mod:`keel.server.pipelines.jobs`), in this
process and against the store ``--store`` / ``KEEL_STORE`` / keel.yml names: ``train`` makes
a tracked ``train`` run and the next version of the model named after the control file;
``run`` calls ``run_pipeline`` with the input as a file object and stores its ``preds`` on a
``pipeline-run`` run, which the server's UI and API show. Parameters (``-p k=3``) are typed
as the control file's ``get_params`` declares them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from keel.cli import PrefixGroup, State, cli, pass_state
from keel.errors import InvalidInput

PIPELINE_EXAMPLES = """\b
Examples:
  keel pipeline run knn_control.py iris.csv -p k=3      # no training phase, like mlopen's knn
  keel pipeline train sentiment_control.py train.csv
  keel pipeline run sentiment_control.py statements.txt --json
"""


@cli.group("pipeline", cls=PrefixGroup, epilog=PIPELINE_EXAMPLES)
def pipeline() -> None:
    """Train and run mlopen pipelines (a control file with train and run_pipeline)."""


def _control(path: str) -> tuple[Path, str]:
    control = Path(path).resolve()
    if control.suffix != ".py" or not control.is_file():
        raise InvalidInput(f"{path}: not a Python control file")
    return control.parent, control.stem


def _params(code_dir: Path, module: str, phase: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """``-p name=value`` pairs checked and typed against the control file's ``get_params``."""
    from keel.models.styles import import_model_module
    from keel.server.pipelines.params import coerce, normalise

    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r}: expected name=value, e.g. k=3", param_hint="-p")
        values[name.strip()] = value
    get_params = getattr(import_model_module(module, code_dir), "get_params", None)
    declared = get_params(phase == "run") if callable(get_params) else None
    warnings: list[str] = []
    fields = normalise(declared, warnings, "training" if phase == "train" else "run")
    for warning in warnings:
        click.echo(f"keel: {warning}", err=True)
    return coerce(fields, values, lambda name: Path(name).resolve())


def _stores(state: State) -> dict[str, str | None]:
    settings = state.client.settings
    return {"store": settings.store, "artifacts": settings.artifacts, "project": settings.project}


def _input(path: str) -> Path:
    found = Path(path).resolve()
    if not found.is_file():
        raise InvalidInput(f"{path}: no such input file")
    return found


@pipeline.command("train")
@click.argument("control", metavar="CONTROL.py")
@click.argument("input_file", metavar="INPUT")
@click.option("-p", "--param", "pairs", multiple=True, metavar="NAME=VALUE", help="Repeat.")
@click.option("--test", "test_file", metavar="INPUT", help="An input file to test on.")
@click.option("--name", help="Pipeline (model) name (default: the control file's name).")
@pass_state
def pipeline_train(
    state: State,
    control: str,
    input_file: str,
    pairs: tuple[str, ...],
    test_file: str | None,
    name: str | None,
) -> None:
    """Train CONTROL.py on INPUT: a train run and the next version of its model."""
    from keel.server.pipelines.jobs import train_job

    result = train_job(
        **_job(state, control, input_file, pairs, "train", name),
        test_path=str(_input(test_file)) if test_file else None,
    )
    click.echo(f"trained {result['model']} version {result['version']} (run {result['run_id']})")


def _job(
    state: State,
    control: str,
    input_file: str,
    pairs: tuple[str, ...],
    phase: str,
    name: str | None,
) -> dict[str, Any]:
    """The arguments a pipeline job of ``phase`` takes, as the server's jobs get them."""
    code_dir, module = _control(control)
    source = _input(input_file)
    return {
        "pipeline": name or module,
        "code_dir": str(code_dir),
        "module": module,
        "input_name": source.name,
        "input_path": str(source),
        "params": _params(code_dir, module, phase, pairs),
        "submitted_by": "cli",
        "stores": _stores(state),
    }


@pipeline.command("run")
@click.argument("control", metavar="CONTROL.py")
@click.argument("input_file", metavar="INPUT")
@click.option("-p", "--param", "pairs", multiple=True, metavar="NAME=VALUE", help="Repeat.")
@click.option("--version", type=int, help="Trained version to use (default: the latest).")
@click.option("--name", help="Pipeline (model) name (default: the control file's name).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_state
def pipeline_run(
    state: State,
    control: str,
    input_file: str,
    pairs: tuple[str, ...],
    version: int | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Run CONTROL.py's run_pipeline on INPUT; its results are stored on a pipeline-run."""
    from keel.server.pipelines.jobs import run_job

    job = _job(state, control, input_file, pairs, "run", name)
    result = run_job(**job, version=version)
    if as_json:
        click.echo(json.dumps(_results(state, result["run_id"]), indent=2, default=str))
        return
    click.echo(
        f"ran {job['pipeline']}: {result['rows']} rows, {result['graphs']} graphs "
        f"(run {result['run_id']})"
    )


def _results(state: State, run_id: str) -> dict[str, Any]:
    from keel.server.pipelines import results

    client = state.client
    summary = results.read_summary(client, run_id)
    out: dict[str, Any] = {"run_id": run_id, "summary": summary.to_json() if summary else None}
    if summary is None:
        return out
    if summary.columns:
        page = results.read_table(client, run_id, 0, max(summary.rows, 1))
        out["columns"], out["data"] = page.columns, page.rows
    out["graphs"] = results.read_graphs(client, run_id, summary.graphs)
    out["text"] = results.read_text(client, run_id) if summary.text else None
    out["imgs"] = results.read_images(client, run_id) if summary.imgs else []
    out["extra"] = results.read_extra(client, run_id) if summary.extra else {}
    return out
