"""``keel sagemaker local train|serve``: the image's SageMaker entrypoint, run on this machine
in an ``/opt/ml``-shaped folder (no container, no AWS)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click

from keel.cli.sagemaker import sagemaker
from keel.errors import InvalidInput, KeelError

LOCAL_EXAMPLES = """
Examples:
  keel sagemaker local train -H C=0.5 --channel iris_train=data/iris_train.csv
  keel sagemaker local serve --port 8080
  curl localhost:8080/ping
"""

#: what a SageMaker container does not have: the settings of the machine it was built on
HOST_ONLY = ("KEEL_STORE", "KEEL_ARTIFACTS", "KEEL_CONFIG", "KEEL_PROJECT")


@sagemaker.group("local")
def local() -> None:
    """Run the image's train/serve contract here, in an /opt/ml-shaped folder."""


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=option)
        found[name] = rest
    return found


ML_ROOT = click.option(
    "--ml-root",
    default="sagemaker-local",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The folder standing in for /opt/ml.",
)


@local.command("train", epilog=LOCAL_EXAMPLES)
@ML_ROOT
@click.option(
    "-H",
    "--hyperparameter",
    "hyperparameters",
    multiple=True,
    metavar="NAME=VALUE",
    help="A hyperparameter (written to hyperparameters.json as a string, as SageMaker does).",
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="NAME=PATH",
    help="An input channel: a file or folder copied to input/data/NAME.",
)
def local_train(ml_root: str, hyperparameters: tuple[str, ...], channels: tuple[str, ...]) -> None:
    """Train the project as a SageMaker training job would, in the image: the version is
    left in <ml-root>/model, a failure's reason in <ml-root>/output/failure."""
    from keel.cli.container import train_in
    from keel.deploy.contract import MlFolder

    given = _pairs(hyperparameters, "--hyperparameter")
    sources = {name: Path(path) for name, path in _pairs(channels, "--channel").items()}
    for name, path in sources.items():
        if not path.exists():
            raise InvalidInput(f"--channel {name}={path}: no such file or folder")
    ml = MlFolder(Path(ml_root).resolve())
    for stale in (ml.root / "input", ml.model, ml.root / "output"):
        shutil.rmtree(stale, ignore_errors=True)
    ml.hyperparameters.parent.mkdir(parents=True)
    ml.hyperparameters.write_text(json.dumps(given), encoding="utf-8")
    for name, path in sources.items():
        target = ml.data / name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(path, target / path.name)
    ml.model.mkdir(parents=True)
    saved = {k: os.environ.pop(k) for k in HOST_ONLY if k in os.environ}
    try:
        train_in(ml.root, Path.cwd())
    except KeelError as exc:
        raise KeelError(f"{exc} (also in {ml.failure})") from None
    finally:
        os.environ.update(saved)
    click.echo(f"Serve it: keel sagemaker local serve --ml-root {ml_root}")


@local.command("serve", epilog=LOCAL_EXAMPLES)
@ML_ROOT
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port (default: SAGEMAKER_BIND_TO_PORT, else 8080).",
)
@click.option(
    "-e",
    "--env",
    "env",
    multiple=True,
    metavar="NAME=VALUE",
    help="A variable of the endpoint's environment (SAGEMAKER_MODEL_SERVER_WORKERS, "
    "ML2P_RECORD_INVOKES, ...).",
)
def local_serve(ml_root: str, host: str, port: int | None, env: tuple[str, ...]) -> None:
    """Serve <ml-root>/model as a SageMaker endpoint's container would: /ping,
    /invocations, /execution-parameters and keel's API."""
    from keel.cli.container import serve_in

    for name in HOST_ONLY:  # the endpoint's environment is what -e gives, as in SageMaker
        os.environ.pop(name, None)
    os.environ.update(_pairs(env, "--env"))
    if port is not None:
        os.environ["SAGEMAKER_BIND_TO_PORT"] = str(port)
    serve_in(Path(ml_root).resolve(), Path.cwd(), host)
