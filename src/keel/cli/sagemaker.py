"""``keel sagemaker …``: a model's way to AWS SageMaker with ML2P's verbs.

A thin caller of :class:`keel.deploy.sagemaker.SageMaker`: each verb builds the request
from keel.yml's ``sagemaker:`` section (or an ML2P project's ml2p.yml, unchanged), calls
boto3 and prints SageMaker's answer as JSON, as ML2P does; ``list`` verbs print a table
(``--json``: one JSON object a line, ML2P's output). Training jobs are also keel runs and
what they train keel model versions, tagged with the SageMaker models and endpoints made
from them (see :mod:`keel.deploy.sagemaker`).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from typing import Any

import click

from keel.cli import PrefixGroup, State, _table, cli, pass_state
from keel.errors import InvalidInput


def _echo_json(value: Any) -> None:
    """ML2P's ``click_echo_json``: indented, datetimes as ``str()``."""

    def default(item: Any) -> Any:
        if isinstance(item, datetime.datetime | datetime.date):
            return str(item)
        raise TypeError(f"{type(item).__name__} is not JSON")

    click.echo(json.dumps(value, indent=2, default=default))


def _api(state: State, lineage: bool = False) -> Any:
    """The SageMaker API for keel.yml's (or ml2p.yml's) settings; with ``lineage`` it
    records in the store (read once the config is known to be good)."""
    from keel.config import load_config
    from keel.deploy.sagemaker import SageMaker

    api = SageMaker.from_config(load_config(state.config))
    if lineage:
        api.client = state.client
    return api


def _model_type_option(func: Any) -> Any:
    def pick(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        from keel.config.ml2p_file import MODEL_ENV

        if value:  # read when ml2p.yml is: its models: entry to use
            os.environ[MODEL_ENV] = value
        return value

    return click.option(
        "--model-type",
        "-m",
        "model_type",
        callback=pick,
        expose_value=False,
        help="ml2p.yml only: the models: entry to use (default: the only one).",
    )(func)


_WAIT_OPTIONS = (
    click.option("--delay", default=10.0, show_default=True, help="Seconds between polls."),
    click.option(
        "--max-attempts",
        default=30,
        show_default=True,
        type=click.IntRange(min=1),
        help="Polls before giving up.",
    ),
)


def _wait_options(func: Any) -> Any:
    for option in reversed(_WAIT_OPTIONS):
        func = option(func)
    return func


def _json_option(func: Any) -> Any:
    return click.option(
        "--json", "as_json", is_flag=True, help="One JSON object a line (ML2P's output)."
    )(func)


def _listing(
    items: Sequence[dict[str, Any]], as_json: bool, title: str, columns: Sequence[str]
) -> None:
    if as_json:
        for item in items:
            _echo_json(item)
        return
    _table(title, columns, ([item.get(c) for c in columns] for item in items))


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="-p")
        params[key] = value
    return params


@cli.group("sagemaker", cls=PrefixGroup)
def sagemaker() -> None:
    """Train and serve on AWS SageMaker: datasets, training jobs, models, endpoints.

    ML2P's verbs, configured by keel.yml's sagemaker: section (or ml2p.yml as it is).
    Names follow ML2P: datasets NAME-YYYYMMDD, training jobs NAME-X-Y, models NAME-X-Y-Z,
    endpoints NAME-X-Y-Z-live; in AWS they start with PROJECT-.

    \b
    Examples:
      keel sagemaker dataset create iris-20240131
      keel sagemaker dataset up iris-20240131 data/iris_train.csv
      keel sagemaker training-job create iris-1-0 iris-20240131
      keel sagemaker training-job wait iris-1-0
      keel sagemaker model create iris-1-0-0
      keel sagemaker endpoint create iris-1-0-0-live
      keel sagemaker endpoint wait iris-1-0-0-live
      keel sagemaker endpoint invoke iris-1-0-0-live '{"sepal_length": 5.1}'
      keel sagemaker endpoint delete iris-1-0-0-live
    """


# --- datasets ------------------------------------------------------------------------------


@sagemaker.group("dataset", cls=PrefixGroup)
def dataset() -> None:
    """Create and fill datasets in the project's S3 folder ({bucket}/datasets/NAME/)."""


@dataset.command("create")
@click.argument("name")
@pass_state
def dataset_create(state: State, name: str) -> None:
    """Create dataset NAME (NAME-YYYYMMDD): a folder holding a README.rst.

    \b
    Example:
      keel sagemaker dataset create iris-20240131
    """
    _echo_json(_api(state).create_dataset(name))


@dataset.command("up")
@click.argument("name")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", required=False)
@pass_state
def dataset_up(state: State, name: str, src: str, dst: str | None) -> None:
    """Upload the file SRC into dataset NAME as DST (default: its own name).

    \b
    Example:
      keel sagemaker dataset up iris-20240131 data/iris_train.csv train.csv
    """
    _echo_json(_api(state).upload_dataset(name, src, dst))


@dataset.command("list")
@_json_option
@pass_state
def dataset_list(state: State, as_json: bool) -> None:
    """List the project's datasets.

    \b
    Example:
      keel sagemaker dataset list --json
    """
    names = _api(state).list_datasets()
    if as_json:
        for name in names:
            _echo_json(name)
        return
    _table("datasets", ["dataset"], ([n] for n in names))


@dataset.command("ls")
@click.argument("name")
@_json_option
@pass_state
def dataset_ls(state: State, name: str, as_json: bool) -> None:
    """List the files of dataset NAME.

    \b
    Example:
      keel sagemaker dataset ls iris-20240131
    """
    _listing(
        _api(state).list_dataset_files(name), as_json, f"files of {name}", ["filename", "size"]
    )


# --- training jobs ----------------------------------------------------------------------------


@sagemaker.group("training-job", cls=PrefixGroup)
def training_job() -> None:
    """Create and inspect training jobs (each one a keel run)."""


@training_job.command("create")
@click.argument("job")
@click.argument("dataset_name", metavar="DATASET")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A hyperparameter (on top of sagemaker.train.hyperparameters). Repeatable.",
)
@_model_type_option
@pass_state
def training_job_create(state: State, job: str, dataset_name: str, params: tuple[str, ...]) -> None:
    """Train on DATASET in a SageMaker training job JOB (NAME-X-Y[-dev]).

    The job's model lands at {bucket}/models/PROJECT-JOB/output/model.tar.gz; a keel run
    records it (tags sagemaker_training_job, sagemaker_dataset; params: hyperparameters).

    \b
    Example:
      keel sagemaker training-job create iris-1-0 iris-20240131 -p C=0.5
    """
    parsed = _parse_params(params)
    _echo_json(_api(state, lineage=True).create_training_job(job, dataset_name, parsed))


@training_job.command("describe")
@click.argument("job")
@pass_state
def training_job_describe(state: State, job: str) -> None:
    """Describe training job JOB; brings its status and metrics into its keel run and,
    once Completed, registers the keel model version it trained.

    \b
    Example:
      keel sagemaker training-job describe iris-1-0
    """
    _echo_json(_api(state, lineage=True).describe_training_job(job))


@training_job.command("wait")
@click.argument("job")
@_wait_options
@pass_state
def training_job_wait(state: State, job: str, delay: float, max_attempts: int) -> None:
    """Wait for training job JOB to complete or stop, then describe it (exit 1 if it
    failed).

    \b
    Example:
      keel sagemaker training-job wait iris-1-0 --delay 30 --max-attempts 120
    """
    _echo_json(_api(state, lineage=True).wait_training_job(job, delay, max_attempts))


@training_job.command("list")
@_json_option
@pass_state
def training_job_list(state: State, as_json: bool) -> None:
    """List the project's training jobs.

    \b
    Example:
      keel sagemaker training-job list
    """
    _listing(
        _api(state).list_training_jobs(),
        as_json,
        "training jobs",
        ["TrainingJobName", "TrainingJobStatus", "CreationTime"],
    )


# --- models -----------------------------------------------------------------------------------


@sagemaker.group("model", cls=PrefixGroup)
def model() -> None:
    """Create and inspect SageMaker models (each one serves a keel model version)."""


@model.command("create")
@click.argument("model_name")
@click.option(
    "--training-job",
    "-t",
    help="The training job whose model to serve (default: MODEL_NAME without its patch "
    "number, as in ML2P).",
)
@_model_type_option
@pass_state
def model_create(state: State, model_name: str, training_job: str | None) -> None:
    """Create SageMaker model MODEL_NAME (NAME-X-Y-Z[-dev]) from a training job's
    model.tar.gz; tags the keel version it holds with sagemaker_model.

    \b
    Example:
      keel sagemaker model create iris-1-0-0 --training-job iris-1-0
    """
    _echo_json(_api(state, lineage=True).create_model(model_name, training_job))


@model.command("describe")
@click.argument("model_name")
@pass_state
def model_describe(state: State, model_name: str) -> None:
    """Describe SageMaker model MODEL_NAME.

    \b
    Example:
      keel sagemaker model describe iris-1-0-0
    """
    _echo_json(_api(state).describe_model(model_name))


@model.command("list")
@_json_option
@pass_state
def model_list(state: State, as_json: bool) -> None:
    """List the project's SageMaker models.

    \b
    Example:
      keel sagemaker model list --json
    """
    _listing(_api(state).list_models(), as_json, "models", ["ModelName", "CreationTime"])


@model.command("delete")
@click.argument("model_name")
@pass_state
def model_delete(state: State, model_name: str) -> None:
    """Delete SageMaker model MODEL_NAME (the keel version stays).

    \b
    Example:
      keel sagemaker model delete iris-1-0-0
    """
    _echo_json(_api(state).delete_model(model_name))


# --- endpoints --------------------------------------------------------------------------------


@sagemaker.group("endpoint", cls=PrefixGroup)
def endpoint() -> None:
    """Create, invoke and delete endpoints."""


@endpoint.command("create")
@click.argument("endpoint_name")
@click.option(
    "--model-name",
    "-m",
    help="The model to serve (default: ENDPOINT_NAME without its -live/-analysis/-test "
    "suffix, as in ML2P).",
)
@pass_state
def endpoint_create(state: State, endpoint_name: str, model_name: str | None) -> None:
    """Create endpoint ENDPOINT_NAME (NAME-X-Y-Z[-dev][-live|-analysis|-test]) and its
    config; tags the keel version it serves with sagemaker_endpoint.

    \b
    Example:
      keel sagemaker endpoint create iris-1-0-0-live
    """
    _echo_json(_api(state, lineage=True).create_endpoint(endpoint_name, model_name))


@endpoint.command("describe")
@click.argument("endpoint_name")
@pass_state
def endpoint_describe(state: State, endpoint_name: str) -> None:
    """Describe endpoint ENDPOINT_NAME, with its invocation URL.

    \b
    Example:
      keel sagemaker endpoint describe iris-1-0-0-live
    """
    _echo_json(_api(state).describe_endpoint(endpoint_name))


@endpoint.command("wait")
@click.argument("endpoint_name")
@_wait_options
@pass_state
def endpoint_wait(state: State, endpoint_name: str, delay: float, max_attempts: int) -> None:
    """Wait until endpoint ENDPOINT_NAME is InService, then describe it.

    \b
    Example:
      keel sagemaker endpoint wait iris-1-0-0-live
    """
    _echo_json(_api(state).wait_endpoint(endpoint_name, delay, max_attempts))


@endpoint.command("invoke")
@click.argument("endpoint_name")
@click.argument("json_data")
@pass_state
def endpoint_invoke(state: State, endpoint_name: str, json_data: str) -> None:
    """Make a prediction: send JSON_DATA (JSON, or @FILE) to endpoint ENDPOINT_NAME.

    \b
    Examples:
      keel sagemaker endpoint invoke iris-1-0-0-live '{"sepal_length": 5.1}'
      keel sagemaker endpoint invoke iris-1-0-0-live @input.json
    """
    if json_data.startswith("@"):
        try:
            with open(json_data[1:], encoding="utf-8") as f:
                json_data = f.read()
        except OSError as exc:
            raise InvalidInput(f"{json_data[1:]}: cannot read it ({exc.strerror})") from None
    try:
        json.loads(json_data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"JSON_DATA is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    _echo_json(_api(state).invoke_endpoint(endpoint_name, json_data))


@endpoint.command("list")
@_json_option
@pass_state
def endpoint_list(state: State, as_json: bool) -> None:
    """List the project's endpoints.

    \b
    Example:
      keel sagemaker endpoint list
    """
    _listing(
        _api(state).list_endpoints(),
        as_json,
        "endpoints",
        ["EndpointName", "EndpointStatus", "CreationTime"],
    )


@endpoint.command("delete")
@click.argument("endpoint_name")
@pass_state
def endpoint_delete(state: State, endpoint_name: str) -> None:
    """Delete endpoint ENDPOINT_NAME and its config (billing stops).

    \b
    Example:
      keel sagemaker endpoint delete iris-1-0-0-live
    """
    for answer in _api(state, lineage=True).delete_endpoint(endpoint_name):
        _echo_json(answer)
