"""``keel init | train | retest | predict | batch-predict | generate-dataset``.

Thin callers of :mod:`keel.lifecycle`: they parse arguments, call one function and print
the outcome (a table, or JSON with ``--json``). ``train``, ``retest`` and
``generate-dataset`` run as a job (see :mod:`keel.cli.jobs`) when ``--executor`` is given or
keel.yml has a ``jobs:`` section, and in this process otherwise; ``batch-predict`` with the
dask executor predicts the source's partitions on the cluster.

Every command but ``init`` needs keel.yml's ``model:`` section and says so in one line before
it touches the store. ``predict`` checks its input against the schema ``keel serve`` checks
``/invocations`` with (:mod:`keel.serving.inputs`), so both refuse a bad field in the same
words. On a terminal the slow ones show what they are doing (:mod:`keel.cli.status`).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from keel.cli import State, _print_json, _table, cli, pass_state
from keel.cli.jobs import job_options, run_command, runs_as_job
from keel.cli.status import status
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.config import Config


def _model_config(state: State, check_store: bool = True) -> Config:
    """keel.yml with its ``model:`` section, read before the store is touched: a folder
    without one is refused in one line and nothing is created. Then, for a command that
    only reads a store, that the store exists (unless ``check_store`` is false)."""
    from keel.config import load_config
    from keel.lifecycle.project import require_model

    config = load_config(state.config)
    require_model(config)
    if check_store and state.store_check_pending:
        state.require_store()
    return config


def _ref(version: str | None, alias: str | None) -> str | None:
    if version and alias:
        raise click.BadParameter("give --version or --alias, not both")
    if version:
        return f"@{version}"
    if alias:
        return f"@{alias}"
    return None


_version_options = [
    click.option(
        "--version",
        "version",
        help="Version number or label (default: keel.yml's label, else latest).",
    ),
    click.option("--alias", "alias", help="An alias such as production."),
]


def _with_version(func: Any) -> Any:
    for option in reversed(_version_options):
        func = option(func)
    return func


@cli.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option(
    "--style",
    type=click.Choice(["keel", "launchpad", "ml2p", "mlopen"]),
    default="keel",
    show_default=True,
    help="Which way of writing model code the example uses.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option(
    "--name",
    help="Name of the project, its model and its API (default: the folder's name).",
)
def init(directory: str, style: str, force: bool, name: str | None) -> None:
    """Write a runnable example project (keel.yml, model code, small data) in DIRECTORY,
    its project and model named after the folder.

    \b
    Examples:
      keel init churn && cd churn && keel train    # project and model 'churn'
      keel init lp --style launchpad
      keel init . --name churn-v2
    """
    import shlex
    from pathlib import Path

    from keel.lifecycle.scaffold import init_project

    written = init_project(directory, style, force=force, name=name)
    named = name or Path(directory).resolve().name
    click.echo(
        f"wrote {len(written)} files to {directory} ({style} style, project and model "
        f"'{named}'); next: cd {shlex.quote(directory)} && keel train"
    )


@cli.command("train")
@click.option("--dataset", help="Train on a registered dataset: NAME or NAME@VERSION.")
@click.option("--fresh", is_flag=True, help="Do not pass the previous version to train().")
@click.option("--no-test", is_flag=True, help="Skip evaluating on the test data.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@job_options
@pass_state
def train(
    state: State,
    dataset: str | None,
    fresh: bool,
    no_test: bool,
    as_json: bool,
    executor: str | None,
    in_process: bool,
    detach: bool,
    timeout: float | None,
) -> None:
    """Train the model in keel.yml, test it and register a new model version.

    \b
    Examples:
      keel train
      keel -c prod.yml train --dataset iris@3
      keel train --executor dask --timeout 3600   # a job on keel.yml's Dask cluster
    """
    config = _model_config(state)
    if runs_as_job(state, executor, in_process, detach):
        args = {"dataset": dataset, "fresh": fresh, "test": not no_test}
        data = run_command(state, "train", args, executor, timeout, detach)
        if data is None:
            return None
    else:
        from keel.jobs.tasks import train_summary
        from keel.lifecycle.training import train as train_model

        with status("training"):
            result = train_model(
                config, dataset=dataset, client=state.client, fresh=fresh, test=not no_test
            )
        data = train_summary(result)
    if as_json:
        return _print_json(data)
    label = f" (label {data['label']})" if data.get("label") else ""
    click.echo(
        f"registered {data['model']} version {data['version']}{label} from run {data['run_id']}"
    )
    if data.get("superseded"):
        click.echo(
            f"superseded version(s) {', '.join(map(str, data['superseded']))} with the same label"
        )
    _metrics_table("test metrics", data.get("metrics") or {})
    return None


def _metrics_table(title: str, metrics: dict[str, Any]) -> None:
    if metrics:
        _table(title, ["metric", "value"], sorted(metrics.items()))


@cli.command("retest")
@_with_version
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@job_options
@pass_state
def retest(
    state: State,
    version: str | None,
    alias: str | None,
    as_json: bool,
    executor: str | None,
    in_process: bool,
    detach: bool,
    timeout: float | None,
) -> None:
    """Evaluate a stored version on the current test data and update its metrics.

    \b
    Examples:
      keel retest
      keel retest --alias production --json
      keel retest --executor local --detach        # a job; see keel jobs show ID
    """
    ref = _ref(version, alias)
    config = _model_config(state)
    if runs_as_job(state, executor, in_process, detach):
        data = run_command(state, "retest", {"ref": ref}, executor, timeout, detach)
        if data is None:
            return None
    else:
        from keel.jobs.tasks import retest_summary
        from keel.lifecycle.training import retest as retest_model

        with status("testing"):
            data = retest_summary(retest_model(config, ref, client=state.client))
    if as_json:
        return _print_json(data)
    click.echo(f"retested {data['model']} version {data['version']} in run {data['run_id']}")
    _metrics_table("metrics", data.get("metrics") or {})
    return None


def _arg_value(text: str) -> Any:
    """A ``--arg`` value typed as JSON would type it (3 → int, 2.5 → float, true → bool,
    null → None, [1, 2] → list), anything else as text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{pair!r}: expected name=value, e.g. x1=3", param_hint="--arg"
            )
        args[name.strip()] = _arg_value(value)
    return args


@cli.command("predict")
@click.argument("input_file", metavar="[FILE|-]", required=False, type=click.File("r"))
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input value (typed as JSON: 3, 2.5, true, text); repeat. Added to FILE's object.",
)
@_with_version
@click.option("--live-code", is_flag=True, help="Run the current model code, not the stored one.")
@pass_state
def predict(
    state: State,
    input_file: Any,
    pairs: tuple[str, ...],
    version: str | None,
    alias: str | None,
    live_code: bool,
) -> None:
    """One prediction from JSON input (a file, - for stdin, or --arg values); prints JSON.

    \b
    Examples:
      keel predict input.json
      echo '{"petal_length": 1.4}' | keel predict - --alias production
      keel -c addition_cfg.yml predict --arg x1=3 --arg x2=2
    """
    from keel.lifecycle.predicting import predict as predict_one
    from keel.serving.inputs import check_inputs, invocation_model

    config = _model_config(state)
    args = _parse_args(pairs)
    if input_file is None and args:
        inputs: Any = args
    else:
        if input_file is None:
            input_file = click.open_file("-")
        inputs = _read_json(input_file)
        if args:
            if not isinstance(inputs, dict):
                raise InvalidInput("--arg adds to a JSON object; the input is not one")
            inputs = {**inputs, **args}
    # the schema the server checks /invocations with: the same input is refused the same way
    inputs = check_inputs(invocation_model(config), inputs)
    with status("predicting"):
        result = predict_one(
            inputs, _ref(version, alias), config=config, client=state.client, live_code=live_code
        )
    click.echo(json.dumps(result, indent=2, allow_nan=False))


def _read_json(input_file: Any) -> Any:
    text = input_file.read()
    name = getattr(input_file, "name", "-")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = "stdin" if name in ("-", "<stdin>") else name
        raise InvalidInput(
            f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None


@cli.command("batch-predict")
@click.option("--source", required=True, help="Data source to read (name in keel.yml).")
@click.option("--sink", required=True, help="Data sink to write (name in keel.yml).")
@_with_version
@click.option(
    "--chunksize",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Rows per chunk.",
)
@click.option("--live-code", is_flag=True, help="Run the current model code, not the stored one.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--executor",
    "executor_name",
    metavar="NAME",
    help="dask: predict the source's partitions on keel.yml's Dask cluster. Default: "
    "keel.yml's jobs.executor; any other executor predicts in this process.",
)
@pass_state
def batch_predict(
    state: State,
    source: str,
    sink: str,
    version: str | None,
    alias: str | None,
    chunksize: int,
    live_code: bool,
    as_json: bool,
    executor_name: str | None,
) -> None:
    """Stream a data source through the model in chunks into a data sink.

    With the dask executor a csv or parquet source is read as a Dask dataframe on the
    workers, each partition is predicted there and the sink is written here, partition
    by partition.

    \b
    Examples:
      keel batch-predict --source to_score --sink predictions
      keel batch-predict --source big --sink scored --chunksize 50000 --alias production
      keel batch-predict --source big --sink scored --executor dask
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from keel.jobs import batch_predict as run_batch
    from keel.jobs.settings import is_configured

    config = _model_config(state)
    executor = None
    if executor_name or is_configured(config):
        from keel.cli.jobs import _executor

        executor = _executor(state, executor_name)

    show = not as_json and sys.stderr.isatty()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{source} → {sink}", total=None)
        result = run_batch(
            source,
            sink,
            _ref(version, alias),
            config=config,
            client=state.client,
            chunksize=chunksize,
            live_code=live_code,
            progress=lambda rows: progress.update(task, completed=rows),
            executor=executor,
        )
    mv = result.version
    if as_json:
        return _print_json(
            {
                "rows": result.rows,
                "seconds": result.seconds,
                "model": mv.model,
                "version": mv.version,
                "run_id": result.run.id,
            }
        )
    click.echo(
        f"wrote {result.rows:,} predictions of {mv.model} version {mv.version} to {sink} "
        f"in {result.seconds:.1f} s (run {result.run.id})"
    )
    return None


@cli.command("generate-dataset")
@click.option("--name", help="Dataset name (default: the model's name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@job_options
@pass_state
def generate_dataset(
    state: State,
    name: str | None,
    as_json: bool,
    executor: str | None,
    in_process: bool,
    detach: bool,
    timeout: float | None,
) -> None:
    """Run the model's dataset generator and register a new dataset version.

    \b
    Examples:
      keel generate-dataset && keel train --dataset iris
      keel generate-dataset --executor dask
    """
    config = _model_config(state)
    if runs_as_job(state, executor, in_process, detach):
        data = run_command(state, "generate-dataset", {"name": name}, executor, timeout, detach)
        if data is None:
            return None
    else:
        from keel.jobs.tasks import dataset_summary
        from keel.lifecycle.datasets import generate_dataset as generate

        with status("generating the dataset"):
            data = dataset_summary(generate(config, name, client=state.client))
    if as_json:
        return _print_json(data)
    click.echo(
        f"registered dataset {data['name']} version {data['version']} ({data['content_hash'][:12]})"
    )
    return None
