"""``keel ml2p …`` and ``keel ml2p-docker …``: ML2P's command-line verbs on keel.

An ML2P project keeps its ml2p.yml (read by :mod:`keel.config.ml2p_file`) and its habits;
each verb that makes sense without AWS calls a keel command:

====================================================  ==========================================
ML2P                                                  keel
====================================================  ==========================================
``ml2p dataset create DS``                            registers DS (version 1: a README.rst)
``ml2p dataset up DS FILE [DST]``                     ``keel datasets``: a new version of DS with
                                                      FILE added (versions never change)
``ml2p dataset ls DS`` / ``dn DS FILE`` / ``rm``      the files of DS's latest version
``ml2p dataset list``                                 ``keel datasets list``
``ml2p dataset generate DS -m TYPE``                  ``keel generate-dataset --name DS``
``ml2p training-job create JOB DS -m TYPE``           ``keel train --dataset DS``; alias JOB
``ml2p model create NAME [-t JOB] -m TYPE``           ``keel models``: alias NAME on JOB's version
``ml2p endpoint create EP [--model-name NAME]``       ``keel serve TYPE@NAME`` (foreground)
``ml2p endpoint invoke EP JSON``                      ``keel predict`` (or POST ``--url``)
``ml2p training-job describe|wait|list``              the version's run: status, params, metrics
``ml2p model list|describe``                          the aliases model create made
``ml2p endpoint describe|wait EP``                    the version served; polls ``--url``/ping
``ml2p init``                                         creates or migrates the store
``ml2p-docker train|generate-dataset|serve``          the container's verbs over ``--ml-folder``
====================================================  ==========================================

``keel ml2p --model TYPE`` (or ``-m TYPE`` on a verb, as in ML2P) picks the ``models:``
entry; with one entry it is the one. Deploying to SageMaker itself is not done here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from keel.cli import PrefixGroup, State, cli, pass_state
from keel.errors import ConfigError, InvalidInput

#: the tag naming the training job that made a model version
JOB_TAG = "ml2p_training_job"

#: ML2P's endpoint name suffixes (an endpoint ``m-1-2-3-live`` serves model ``m-1-2-3``)
ENDPOINT_SUFFIXES = ("-live", "-analysis", "-test")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _pick(model_type: str | None) -> None:
    """Use ``model_type`` (a ``models:`` entry) for this command and its jobs."""
    from keel.config.ml2p_file import MODEL_ENV

    if model_type:
        os.environ[MODEL_ENV] = model_type


def _model_type_option(func: Any) -> Any:
    return click.option(
        "--model-type",
        "-m",
        "model_type",
        help="The models: entry of ml2p.yml to use (default: the only one).",
    )(func)


def _project(state: State) -> Any:
    """The config in use, which must be an ml2p.yml; its Ml2pDocument."""
    from keel.config import load_config
    from keel.config.ml2p_file import Ml2pDocument

    config = load_config(state.config)
    if not isinstance(config.document, Ml2pDocument):
        raise ConfigError(
            f"keel ml2p needs ML2P's ml2p.yml ({config.describe()}): run it in the project "
            "folder or give --cfg ml2p.yml"
        )
    return config


def _model_type(state: State) -> str:
    config = _project(state)
    document = config.document
    if document.model_type is None:
        raise ConfigError(
            document.pick_hint()
            or f"{config.path}: models: lists no model class: add one, e.g. "
            'models: {boston: "model.BostonModel"}'
        )
    return str(document.model_type)


@cli.group("ml2p", cls=PrefixGroup)
@click.option(
    "--cfg",
    type=click.Path(),
    help="ML2P project file (default: -c, else ./ml2p.yml when there is no keel.yml).",
)
@click.option(
    "--model",
    "--model-type",
    "model_type",
    help="The models: entry of ml2p.yml to use (default: the only one).",
)
@pass_state
def ml2p(state: State, cfg: str | None, model_type: str | None) -> None:
    """ML2P's verbs on keel, with the project's ml2p.yml as it is.

    \b
    Examples:
      keel ml2p dataset create boston-20200901
      keel ml2p dataset up boston-20200901 house-prices.csv
      keel ml2p training-job create boston-train boston-20200901 --model-type boston
      keel ml2p model create boston-model --training-job boston-train
      keel ml2p endpoint create boston-endpoint --model-name boston-model --port 8080
    """
    if cfg:
        state.config = cfg
    _pick(model_type)


ml2p.keel_compat = "ML2P"  # type: ignore[attr-defined]


@ml2p.command("init")
@pass_state
def init(state: State) -> None:
    """Make the project's store ready (ML2P made its S3 folders; keel creates or migrates
    the metadata store and names where models and datasets go)."""
    from keel.store.engine import mask_url
    from keel.tracking.settings import resolve_settings

    config = _project(state)
    settings = resolve_settings(store=state.store, project=state.project, config_path=state.config)
    state.client.get_or_create_exp(config.project or "default")
    click.echo(f"project {config.project}: store {mask_url(settings.store)}")
    click.echo(f"models and datasets: {settings.artifacts}")


# --- datasets ---------------------------------------------------------------------------


@ml2p.group("dataset", cls=PrefixGroup)
def dataset() -> None:
    """Create and fill datasets (keel datasets: every change is a new version)."""


@dataset.command("list")
@pass_state
def dataset_list(state: State) -> None:
    """List the project's datasets."""
    _project(state)
    names = sorted({d.name for d in state.client.find_datasets(limit=None)})
    for name in names:
        _echo_json(name)


def _latest_files(state: State, name: str) -> Path | None:
    from keel.errors import NotFound

    try:
        found = state.client.get_dataset(name)
    except NotFound:
        return None
    return state.client.get_dataset_files(found)


def _register(state: State, name: str, folder: Path) -> Any:
    found = state.client.log_dataset(name, folder)
    _echo_json({"dataset": found.name, "version": found.version, "files": _listing(folder)})
    return found


def _inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` for a relative path that stays inside ``folder``."""
    from keel.paths import check_relative_path

    return folder / check_relative_path(name, what)


def _listing(folder: Path) -> list[dict[str, Any]]:
    return [
        {"filename": p.relative_to(folder).as_posix(), "size": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def _staged(state: State, name: str) -> Any:
    """A scratch copy of the latest version's files (empty for a new dataset)."""
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="keel-ml2p-dataset-"))
    folder = work / name.replace("/", "_")
    latest = _latest_files(state, name)
    if latest is not None:
        shutil.copytree(latest, folder)
    else:
        folder.mkdir()
    return work, folder


@dataset.command("create")
@click.argument("name")
@pass_state
def dataset_create(state: State, name: str) -> None:
    """Create a dataset (its first version holds a README.rst, as in ML2P)."""
    import shutil

    config = _project(state)
    if _latest_files(state, name) is not None:
        raise InvalidInput(f"dataset {name} exists: add files with `keel ml2p dataset up`")
    work, folder = _staged(state, name)
    try:
        (folder / "README.rst").write_text(f"Dataset {name} for project {config.project}.")
        _register(state, name, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataset.command("up")
@click.argument("name")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", required=False)
@pass_state
def dataset_up(state: State, name: str, src: str, dst: str | None) -> None:
    """Upload the file SRC to a dataset as DST (default: its own name): a new version."""
    import shutil

    _project(state)
    work, folder = _staged(state, name)
    try:
        target = _inside(folder, dst or Path(src).name, "DST")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        _register(state, name, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataset.command("rm")
@click.argument("name")
@click.argument("filename")
@pass_state
def dataset_rm(state: State, name: str, filename: str) -> None:
    """Remove a file from a dataset: a new version without it."""
    import shutil

    _project(state)
    work, folder = _staged(state, name)
    try:
        target = _inside(folder, filename, "FILENAME")
        if not target.is_file():
            raise InvalidInput(f"dataset {name} has no file {filename!r}")
        target.unlink()
        if not any(folder.rglob("*")):
            raise InvalidInput(f"{filename} is the last file of dataset {name}: keep one")
        _register(state, name, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataset.command("ls")
@click.argument("name")
@pass_state
def dataset_ls(state: State, name: str) -> None:
    """List the files of a dataset's latest version."""
    _project(state)
    folder = state.client.get_dataset_files(state.client.get_dataset(name))
    for item in _listing(folder):
        _echo_json(item)


@dataset.command("dn")
@click.argument("name")
@click.argument("src")
@click.argument("dst", required=False, type=click.Path(dir_okay=False))
@pass_state
def dataset_dn(state: State, name: str, src: str, dst: str | None) -> None:
    """Download the file SRC of a dataset to DST (default: its own name)."""
    import shutil

    _project(state)
    source = _inside(state.client.get_dataset_files(state.client.get_dataset(name)), src, "SRC")
    if not source.is_file():
        raise InvalidInput(f"dataset {name} has no file {src!r}")
    shutil.copyfile(source, dst or Path(src).name)


@dataset.command("generate")
@click.argument("name")
@_model_type_option
@pass_state
def dataset_generate(state: State, name: str, model_type: str | None) -> None:
    """Run the model's dataset generator and register its files as dataset NAME."""
    from keel.jobs.tasks import dataset_summary
    from keel.lifecycle.datasets import generate_dataset

    _pick(model_type)
    _model_type(state)
    _echo_json(dataset_summary(generate_dataset(state.config, name, client=state.client)))


# --- training jobs and models -------------------------------------------------------------


@ml2p.group("training-job", cls=PrefixGroup)
def training_job() -> None:
    """Train models (keel train)."""


@training_job.command("create")
@click.argument("job")
@click.argument("dataset_name", metavar="DATASET")
@_model_type_option
@pass_state
def training_job_create(state: State, job: str, dataset_name: str, model_type: str | None) -> None:
    """Train on DATASET and register the model version; JOB becomes its alias."""
    from keel.jobs.tasks import train_summary
    from keel.lifecycle.training import train

    _pick(model_type)
    config = _project(state)
    name = _model_type(state)
    result = train(state.config, dataset=dataset_name, client=state.client)
    summary = train_summary(result)
    version = state.client.get_model_version(f"{name}@{summary['version']}")
    version.set_alias(job)
    version.set_tags({JOB_TAG: job})
    _echo_json({"TrainingJobName": f"{config.project}-{job}", **summary})


#: SageMaker's words for keel's run statuses
JOB_STATUS = {
    "scheduled": "InProgress",
    "running": "InProgress",
    "finished": "Completed",
    "failed": "Failed",
    "killed": "Stopped",
}


def _job_version(state: State, job: str) -> Any:
    from keel.errors import NotFound

    name = _model_type(state)
    try:
        version = state.client.get_model_version(f"{name}@{job}")
    except NotFound:
        raise click.ClickException(
            f"no training job {job!r} for model {name}: see keel ml2p training-job list"
        ) from None
    return version


def _describe_job(state: State, job: str) -> dict[str, Any]:
    config = _project(state)
    version = _job_version(state, job)
    run = version.run
    return {
        "TrainingJobName": f"{config.project}-{job}",
        "TrainingJobStatus": JOB_STATUS.get(run.status, run.status) if run else "Completed",
        "FailureReason": (run.failure or "").strip().splitlines()[-1:] if run else [],
        "HyperParameters": dict(run.params) if run else {},
        "FinalMetricDataList": [
            {"MetricName": k, "Value": v} for k, v in sorted(version.metrics.items())
        ],
        "ModelArtifacts": {"model": version.model, "version": version.version},
        "RunId": version.run_id,
    }


@training_job.command("list")
@pass_state
def training_job_list(state: State) -> None:
    """List the training jobs (model versions made by training-job create)."""
    _project(state)
    found = state.client.find_model_versions(
        {"model.name": _model_type(state), f"tags.{JOB_TAG}": {"$exists": True}},
        sort=[("version", 1)],
        limit=None,
    )
    for version in found:
        _echo_json(version.tags[JOB_TAG])


@training_job.command("describe")
@click.argument("job")
@pass_state
def training_job_describe(state: State, job: str) -> None:
    """Show a training job: status, hyperparameters, metrics, the version it made."""
    _echo_json(_describe_job(state, job))


@training_job.command("wait")
@click.argument("job")
@click.option("--timeout", default=3600.0, show_default=True, help="Give up after S seconds.")
@pass_state
def training_job_wait(state: State, job: str, timeout: float) -> None:
    """Wait until a training job is no longer running (keel trains in the foreground, so
    this usually returns at once); exits 1 if it failed."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        described = _describe_job(state, job)
        if described["TrainingJobStatus"] != "InProgress":
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"training job {job} still running after {timeout:g} s")
        time.sleep(1.0)
    click.echo(f"training job {job}: {described['TrainingJobStatus']}")
    if described["TrainingJobStatus"] != "Completed":
        sys.exit(1)


def _training_job_for_model(model_name: str) -> str:
    """ML2P's default: the model name without its patch number (``m-1-2-3`` → ``m-1-2``)."""
    match = re.fullmatch(r"(.+-\d+-\d+)-\d+(-.*)?", model_name)
    return match.group(1) if match else model_name


@ml2p.group("model", cls=PrefixGroup)
def model() -> None:
    """Name trained model versions (keel aliases)."""


@model.command("create")
@click.argument("model_name")
@click.option(
    "--training-job",
    "-t",
    help="The training job to take the model from (default: the model name without its "
    "patch number).",
)
@_model_type_option
@pass_state
def model_create(
    state: State, model_name: str, training_job: str | None, model_type: str | None
) -> None:
    """Make MODEL_NAME an alias of the version a training job registered."""
    _pick(model_type)
    config = _project(state)
    name = _model_type(state)
    job = training_job or _training_job_for_model(model_name)
    version = state.client.get_model_version(f"{name}@{job}").set_alias(model_name)
    _echo_json(
        {"ModelName": f"{config.project}-{model_name}", "model": name, "version": version.version}
    )


@model.command("list")
@pass_state
def model_list(state: State) -> None:
    """List the model names (aliases made by model create)."""
    _project(state)
    model = state.client.get_model(_model_type(state))
    jobs = {
        v.tags[JOB_TAG]
        for v in state.client.find_model_versions(
            {"model.name": model.name, f"tags.{JOB_TAG}": {"$exists": True}}, limit=None
        )
    }
    for alias in sorted(set(model.aliases) - jobs):
        _echo_json(alias)


@model.command("describe")
@click.argument("model_name")
@pass_state
def model_describe(state: State, model_name: str) -> None:
    """Show a model: the version it names, its label, content hash and training job."""
    config = _project(state)
    version = state.client.get_model_version(f"{_model_type(state)}@{model_name}")
    _echo_json(
        {
            "ModelName": f"{config.project}-{model_name}",
            "model": version.model,
            "version": version.version,
            "label": version.label,
            "content_hash": version.content_hash,
            "TrainingJobName": version.tags.get(JOB_TAG),
            "RunId": version.run_id,
        }
    )


# --- endpoints ------------------------------------------------------------------------------


def _model_for_endpoint(endpoint: str) -> str:
    for suffix in ENDPOINT_SUFFIXES:
        if endpoint.endswith(suffix):
            return endpoint[: -len(suffix)]
    return endpoint


@ml2p.group("endpoint", cls=PrefixGroup)
def endpoint() -> None:
    """Serve and invoke models (keel serve, keel predict)."""


@endpoint.command("create")
@click.argument("endpoint_name")
@click.option(
    "--model-name",
    help="The model to serve (default: the endpoint name without "
    "its -live/-analysis/-test suffix).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@pass_state
def endpoint_create(
    state: State, endpoint_name: str, model_name: str | None, host: str, port: int, workers: int
) -> None:
    """Serve a model in the foreground (keel serve), with ML2P's wire shapes."""
    from keel.serving.server import ServeOptions, resolve_version, serve

    _project(state)
    ref, what = resolve_version(
        f"{_model_type(state)}@{model_name or _model_for_endpoint(endpoint_name)}", state.config
    )
    if state.store:
        os.environ["KEEL_STORE"] = state.store
    click.echo(f"keel: endpoint {endpoint_name} serves {what} on http://{host}:{port}", err=True)
    serve(ref, state.config, ServeOptions(host=host, port=port, workers=workers))


def _ping(url: str) -> tuple[int | None, Any]:
    import httpx2

    try:
        answer = httpx2.get(url.rstrip("/") + "/ping", timeout=5)
    except httpx2.HTTPError:
        return None, None
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, None


_URL_OPTION = click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Where the endpoint (keel ml2p endpoint create) listens.",
)


@endpoint.command("describe")
@click.argument("endpoint_name")
@click.option("--model-name", help="The model (default: from the endpoint name).")
@_URL_OPTION
@pass_state
def endpoint_describe(state: State, endpoint_name: str, model_name: str | None, url: str) -> None:
    """Show the model version an endpoint serves and whether it answers at --url."""
    config = _project(state)
    name = model_name or _model_for_endpoint(endpoint_name)
    version = state.client.get_model_version(f"{_model_type(state)}@{name}")
    status, ping = _ping(url)
    _echo_json(
        {
            "EndpointName": f"{config.project}-{endpoint_name}",
            "EndpointStatus": "InService" if status == 200 else "OutOfService",
            "ModelName": f"{config.project}-{name}",
            "model": version.model,
            "version": version.version,
            "url": url,
            "ping": ping,
        }
    )


@endpoint.command("wait")
@click.argument("endpoint_name")
@_URL_OPTION
@click.option("--timeout", default=600.0, show_default=True, help="Give up after S seconds.")
@pass_state
def endpoint_wait(state: State, endpoint_name: str, url: str, timeout: float) -> None:
    """Wait until the endpoint at --url answers /ping."""
    import time

    deadline = time.monotonic() + timeout
    while _ping(url)[0] != 200:
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"endpoint {endpoint_name} at {url} did not answer /ping within {timeout:g} s "
                "(start it with keel ml2p endpoint create)"
            )
        time.sleep(0.5)
    click.echo(f"endpoint {endpoint_name}: InService at {url}")


@endpoint.command("invoke")
@click.argument("endpoint_name")
@click.argument("json_data")
@click.option(
    "--url",
    help="A running endpoint (keel ml2p endpoint create) to POST to; "
    "default: predict in this process.",
)
@click.option("--model-name", help="The model (default: from the endpoint name).")
@pass_state
def endpoint_invoke(
    state: State, endpoint_name: str, json_data: str, url: str | None, model_name: str | None
) -> None:
    """Make a prediction: prints {"metadata": …, "result": …}."""
    try:
        inputs = json.loads(json_data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"JSON_DATA is not valid JSON: {exc.msg}") from None
    if url:
        import httpx2

        answer = httpx2.post(url.rstrip("/") + "/invocations", json=inputs, timeout=60)
        _echo_json({"StatusCode": answer.status_code, "Body": answer.json()})
        if answer.status_code >= 400:
            sys.exit(1)
        return
    from keel.lifecycle.loading import load_model

    _project(state)
    ref = f"{_model_type(state)}@{model_name or _model_for_endpoint(endpoint_name)}"
    with load_model(ref, config=state.config, client=state.client) as loaded:
        result = loaded.predict(inputs)
        metadata = loaded.model.answer_metadata(loaded.ctx) or {"model_version": ref}
    _echo_json({"Body": {"metadata": metadata, "result": result}})


# --- ml2p-docker: the container's verbs -----------------------------------------------------


@cli.group("ml2p-docker", cls=PrefixGroup)
@click.option(
    "--ml-folder",
    default="/opt/ml/",
    show_default=True,
    help="The base folder for the datasets and models.",
)
@click.option(
    "--model",
    "model_cls",
    help="The fully qualified name of the ML2P Model class (default: env ML2P_MODEL_CLS).",
)
@click.pass_context
def ml2p_docker(ctx: click.Context, ml_folder: str, model_cls: str | None) -> None:
    """ML2P's container verbs: train, serve, generate-dataset, with SageMaker's folders
    and the ML2P_* variables, as ml2p-docker does (no keel store involved)."""
    from keel.compat.ml2p.core import SageMakerEnv

    env = SageMakerEnv(ml_folder)
    ctx.obj = {"env": env, "model": model_cls or env.model_cls}


ml2p_docker.keel_compat = "ML2P"  # type: ignore[attr-defined]


def _docker_model(ctx: click.Context, verb: str, job: str) -> Any:
    from keel.compat.ml2p.core import import_string

    name = ctx.obj["model"]
    if name is None:
        raise click.UsageError(
            f"The global parameter --model must either be given when calling the {verb} "
            f"command or --model-type must be given when creating the {job}."
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return import_string(name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--model {name}: cannot import it ({exc})") from None


@ml2p_docker.command("train")
@click.pass_context
def docker_train(ctx: click.Context) -> None:
    """Train the model."""
    import traceback

    model_cls = _docker_model(ctx, "train", "training job")
    env = ctx.obj["env"]
    click.echo(f"Starting training job {env.training_job_name}.")
    env.model_folder().mkdir(parents=True, exist_ok=True)  # SageMaker provides it
    try:
        model_cls().trainer(env).train()
    except Exception as exc:
        env.write_failure(traceback.format_exc())
        raise InvalidInput(f"training failed: {type(exc).__name__}: {exc}") from exc
    click.echo("Done.")


@ml2p_docker.command("generate-dataset")
@click.pass_context
def docker_generate_dataset(ctx: click.Context) -> None:
    """Generates a dataset for training the model."""
    import traceback

    model_cls = _docker_model(ctx, "generate-dataset", "dataset")
    env = ctx.obj["env"]
    click.echo(f"Starting generation of dataset {env.dataset_name}.")
    env.dataset_folder().mkdir(parents=True, exist_ok=True)
    try:
        model_cls().dataset_generator(env).generate()
    except Exception as exc:
        env.write_failure(traceback.format_exc())
        raise InvalidInput(f"dataset generation failed: {type(exc).__name__}: {exc}") from exc
    click.echo("Done.")


@ml2p_docker.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def docker_serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the model and make predictions (the model folder as it is, no store)."""
    import tempfile

    import uvicorn

    from keel.compat.ml2p.core import Ml2pModel
    from keel.lifecycle.artifact import Manifest
    from keel.lifecycle.loading import LoadedModel
    from keel.models.base import ModelContext
    from keel.serving.app import build_app
    from keel.serving.service import ModelService
    from keel.serving.spec import ApiSpec

    model_cls = _docker_model(ctx, "serve", "model")
    env = ctx.obj["env"]
    click.echo(f"Starting server for model version {env.model_version}.")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", env.model_version or "model").strip("-") or "model"
    model_code = Ml2pModel(model_cls)
    model_ctx = ModelContext(
        phase="predict",
        model_conf={"name": name},
        model_dir=env.model_folder(),
        work_dir=Path(tempfile.mkdtemp(prefix="keel-ml2p-serve-")),
        project=env.project or "default",
        version=env.model_version,
        artifact_root=env.s3.s3folder if env.s3 is not None else "",
        record_invokes=env.record_invokes,
    )
    manifest = Manifest(
        model=name,
        label=None,
        style="ml2p",
        model_class=f"{model_cls.__module__}.{model_cls.__qualname__}",
        run_id=None,
        trained_at=0.0,
        fitted=[],
        libraries={},
    )
    loaded = LoadedModel(model_code, None, manifest, model_ctx)
    service = ModelService(loaded, ApiSpec(name=name))
    from keel.server.protocol import SlowClientTimeouts

    uvicorn.run(
        build_app(service),
        host=host,
        port=port,
        log_level="info",
        http=SlowClientTimeouts,  # slow clients end (10 s for a head, 30 s body pauses)
    )
    click.echo("Done.")


def ml2p_checks(config_path: str | None) -> list[Any]:
    """``keel doctor``'s rows for an ml2p.yml: the model in use and the keys unused here."""
    from keel.config import load_config
    from keel.config.ml2p_file import Ml2pDocument
    from keel.server.doctor import Check

    try:
        config = load_config(config_path)
    except ConfigError:
        return []  # the config row says what is wrong
    document = config.document
    if not isinstance(document, Ml2pDocument):
        return []
    rows = []
    if document.model_type is not None:
        detail = f"model {document.model_type} ({document.model_types[document.model_type]})"
        rows.append(Check("ml2p model", "ok", detail, ""))
    elif document.model_types:
        rows.append(Check("ml2p model", "warning", "none picked", document.pick_hint()))
    else:
        rows.append(
            Check("ml2p model", "warning", "models: lists none", "add models: {NAME: module.Class}")
        )
    if document.unused:
        rows.append(
            Check(
                "ml2p.yml (AWS)",
                "ok",
                "unused here (deploying to SageMaker): " + ", ".join(document.unused),
                "",
            )
        )
    return rows
