"""``keel container build`` and ``keel container entrypoint``: images of a model version
and the SageMaker contract they keep (thin callers of :mod:`keel.deploy`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click

from keel.cli import PrefixGroup, State, _print_json, _table, cli, pass_state
from keel.errors import ConfigError

BUILD_EXAMPLES = """
Examples:
  keel container build iris@1 --builder podman            # build and report size and time
  keel container build iris@production --tag registry.example.com/iris:1 --builder docker
  keel container build iris@1 -o build/iris               # only the context, build it yourself
  keel container build --builder podman                   # the project, to train in (SageMaker)
  keel container build iris@1 --base localhost/python:3.11 --builder podman --json
"""

#: where the image keeps its project and baked-in version (keel.deploy.container)
IMAGE_PROJECT = Path("/opt/keel/project")
IMAGE_MODEL = Path("/opt/keel/model")


@cli.group("container", cls=PrefixGroup)
def container() -> None:
    """Container images (OCI) of a model version, keeping SageMaker's train/serve contract."""


def _size(value: int | None) -> str:
    return "?" if value is None else f"{value / 1e6:,.1f} MB"


@container.command("build", epilog=BUILD_EXAMPLES)
@click.argument("model", metavar="[MODEL@VERSION]", required=False)
@click.option(
    "--base",
    help="The image to build on; it must have python3 of --python "
    "(default: python:<--python>-slim).",
)
@click.option("--tag", "-t", help="The image's name (default: keel-<model>:<version>).")
@click.option(
    "--builder",
    type=click.Choice(["podman", "docker", "buildah"]),
    help="Build the image with this tool; without it only the build context is written.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Where to write the build context (a new folder; default: keel-container-<name>, "
    "or a temporary folder when --builder builds it).",
)
@click.option(
    "--python",
    "python_version",
    default=None,
    help="The Python version (X.Y) of the base image (default: this Python's).",
)
@click.option(
    "--platform",
    "platform_tag",
    help="The wheel platform tag of the base (default: manylinux_2_36_<machine>, Debian 12).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def container_build(
    state: State,
    model: str | None,
    base: str | None,
    tag: str | None,
    builder: str | None,
    output: str | None,
    python_version: str | None,
    platform_tag: str | None,
    as_json: bool,
) -> None:
    """Build an OCI image of a model version, or of the project to train in.

    The image holds keel, the version (its files checked against the registered hash),
    the project's folder (keel.yml, model code, small data) and only the libraries the
    version was trained with, at the versions it recorded, plus keel's serving core.
    Its entrypoint keeps SageMaker's contract: `train` (hyperparameters.json, channels as
    data sources, the model left in /opt/ml/model) and `serve` (port 8080, /ping,
    /invocations). Without --builder the context (Containerfile + files) is written and the
    command to build it printed.
    """
    from keel.cli.status import status
    from keel.config import load_config
    from keel.deploy.container import DEFAULT_PYTHON, build, write_context

    python = python_version or DEFAULT_PYTHON
    if not _is_python_version(python):
        raise click.BadParameter(
            f"{python!r} is not a Python version like 3.11", param_hint="--python"
        )
    config = load_config(state.config)
    project_dir = config.base_dir if config.path is not None else None
    client = None
    if model is not None:
        state.require_store()
        client = state.client
        ref = model if "@" in model else f"{model}@latest"
        mv = client.get_model_version(ref)
        model = f"{mv.model}@{mv.version}"
        name = f"{mv.model}-{mv.version}"
    else:
        if config.settings.model is None:
            raise ConfigError(
                "keel container build: name a version (e.g. iris@1), or run it where keel.yml "
                "is to build an image that trains the project"
            )
        name = config.settings.model.name or "project"
    owned = output is None and builder is not None
    folder = (
        Path(tempfile.mkdtemp(prefix="keel-container-")) / "context"
        if owned
        else Path(output or f"keel-container-{name}")
    )
    try:
        with status("writing the build context") as shown:
            context = write_context(
                folder,
                project_dir=project_dir,
                client=client,
                ref=model,
                base=base,
                tag=tag,
                python=python,
                platform_tag=platform_tag,
                progress=shown,
            )
        if builder is None:
            _report_context(context, as_json)
            return
        with status(f"building {context.tag} with {builder}"):
            built = build(context, builder)
    finally:
        if owned:
            import shutil

            shutil.rmtree(folder.parent, ignore_errors=True)
    if as_json:
        _print_json(built.to_json())
        return
    _table(
        ["image", "size", "build", "context", "libraries", "base"],
        [
            [
                built.tag,
                _size(built.size_bytes),
                f"{built.build_seconds:.1f} s",
                f"{context.seconds:.1f} s",
                str(len(context.requirements)),
                context.base,
            ]
        ],
    )
    click.echo(
        f"Run it: {builder} run -p 8080:8080 {built.tag}   (SageMaker: push it to ECR, "
        "then keel sagemaker model create)"
    )


def _is_python_version(text: str) -> bool:
    major, _, minor = text.partition(".")
    return major.isdigit() and minor.isdigit()


def _report_context(context: Any, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "context": str(context.folder),
                "image": context.tag,
                "base": context.base,
                "model": context.model,
                "python": context.python,
                "requirements": context.requirements,
                "context_seconds": round(context.seconds, 2),
            }
        )
        return
    click.echo(f"Wrote the build context of {context.tag} to {context.folder}")
    click.echo(
        f"  {len(context.requirements)} libraries for Python {context.python}, base {context.base}"
    )
    click.echo(f"Build it: podman build -t {context.tag} {context.folder}")
    click.echo(f"      or: docker build -t {context.tag} {context.folder}")


# --- the image's entrypoint -----------------------------------------------------------------


def _ml2p_project(project_dir: Path) -> bool:
    from keel.config import DEFAULT_CONFIG_NAME, ML2P_CONFIG_NAME

    if (project_dir / DEFAULT_CONFIG_NAME).is_file():
        return False
    return bool(os.environ.get("ML2P_MODEL_CLS")) or (project_dir / ML2P_CONFIG_NAME).is_file()


def _run_ml2p(verb: str, ml_root: Path) -> None:
    """An ML2P project's image: ML2P's own container verbs (keel ml2p-docker)."""
    from keel.cli.ml2p import ml2p_docker

    ml2p_docker.main(["--ml-folder", str(ml_root), verb], standalone_mode=False)


ML_ROOT_OPTION = click.option(
    "--ml-root",
    default="/opt/ml",
    show_default=True,
    type=click.Path(file_okay=False),
    help="SageMaker's folder (input/, model/, output/).",
)
PROJECT_OPTION = click.option(
    "--project-dir",
    type=click.Path(file_okay=False, exists=True),
    help="The project's folder (default: the working folder; /opt/keel/project in images).",
)


@container.group("entrypoint", cls=PrefixGroup)
def entrypoint() -> None:
    """The image's entrypoint: SageMaker runs it as `IMAGE train` or `IMAGE serve`."""


@entrypoint.command("train")
@ML_ROOT_OPTION
@PROJECT_OPTION
def entrypoint_train(ml_root: str, project_dir: str | None) -> None:
    """Train: hyperparameters.json typed through keel.yml's params, each channel as the data
    source of its name, the version left in <ml-root>/model; a failure's reason in
    <ml-root>/output/failure and a non-zero exit."""
    train_in(Path(ml_root), Path(project_dir or Path.cwd()))


def train_in(ml_root: Path, project_dir: Path) -> None:
    from keel.deploy.contract import MlFolder, train

    if _ml2p_project(project_dir):
        _run_ml2p("train", ml_root)
        return
    outcome = train(MlFolder(ml_root), project_dir)
    info = outcome.info
    click.echo(
        f"keel: trained {info.model} version {info.version} into {MlFolder(ml_root).model} "
        f"(hyperparameters {outcome.hyperparameters or 'as keel.yml'}, "
        f"channels {', '.join(outcome.channels) or 'none'})"
    )


@entrypoint.command("serve")
@ML_ROOT_OPTION
@PROJECT_OPTION
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
def entrypoint_serve(ml_root: str, project_dir: str | None, host: str) -> None:
    """Serve the version in <ml-root>/model (else the image's own) on port 8080
    (SAGEMAKER_BIND_TO_PORT): /ping, /invocations and keel's API."""
    serve_in(Path(ml_root), Path(project_dir or Path.cwd()), host)


def serve_in(ml_root: Path, project_dir: Path, host: str) -> None:
    from keel.deploy.contract import MlFolder, serve

    if _ml2p_project(project_dir):
        _run_ml2p("serve", ml_root)
        return
    serve(MlFolder(ml_root), project_dir, baked=IMAGE_MODEL, host=host)
