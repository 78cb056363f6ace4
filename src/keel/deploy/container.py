"""``keel container build``: an OCI image of a model version (or a project, to train in).

The build context is made here, on the host, so the Containerfile needs no ``RUN`` step and
no network (it builds with any builder, in a sandbox, behind a proxy)::

    Containerfile
    site-packages/   keel + the libraries, installed by pip for the image's Python
                     (without the libraries' own test suites)
    bin/keel         the keel command, for a shell in the image
    project/         the project's folder (keel.yml, model code, small data), minus the store
    model/           the version (keel-version.json + version/), when one is given

Only what the version needs goes in: the libraries it recorded at training (``sklearn`` →
scikit-learn at the version it was trained with) and keel's serving core (no UI, Dask or
MLflow), each pinned to the version installed here, their dependencies resolved by pip for
the target platform (``manylinux_2_36`` x86_64, CPython 3.11 by default: a
``python:3.11-slim`` base). The image's entrypoint keeps SageMaker's contract
(:mod:`keel.deploy.contract`): ``train`` and ``serve`` (the default).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput, KeelError

if TYPE_CHECKING:
    from keel.tracking.client import Client

#: keel's serving and training core: what the entrypoint imports (not the web UI's
#: jinja2/plotly/nh3/argon2, not Dask or MLflow)
RUNTIME = (
    "pydantic",
    "PyYAML",
    "SQLAlchemy",
    "alembic",
    "psycopg",
    "psycopg-binary",
    "fsspec",
    "s3fs",
    "typer",
    "rich",
    "numpy",
    "pandas",
    "cloudpickle",
    "joblib",
    "fastapi",
    "uvicorn",
    "httptools",
    "uvloop",
    "python-multipart",
    "prometheus-client",
    "httpx2",
    "regex",
    "datasketches",
    "scipy",
)
#: never in an image: keel itself (copied from its source) and the installers
NOT_LIBRARIES = {"keel", "pip", "setuptools", "wheel", "uv"}
#: left out of the project folder (plus what .containerignore / .dockerignore list)
IGNORED = (
    ".keel",
    ".git",
    ".venv*",
    "venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
    "node_modules",
    ".keel-sagemaker.yml",
    "keel-container*",
    "sagemaker-local",
)
DEFAULT_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
#: Debian bookworm's C library, the base of python:3.11-slim
DEFAULT_GLIBC = "2_36"
IMAGE_ROOT = "/opt/keel"
PATH = "/opt/keel/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class BuildContext:
    """A written build context and what went into it."""

    folder: Path
    tag: str
    base: str
    python: str
    requirements: dict[str, str]
    model: str | None = None
    seconds: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def containerfile(self) -> Path:
        return self.folder / "Containerfile"


@dataclass
class BuiltImage:
    """An image a builder made from a context."""

    context: BuildContext
    builder: str
    tag: str
    size_bytes: int | None
    build_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.tag,
            "builder": self.builder,
            "size_bytes": self.size_bytes,
            "build_seconds": round(self.build_seconds, 2),
            "context_seconds": round(self.context.seconds, 2),
            "context": str(self.context.folder),
            "base": self.context.base,
            "model": self.context.model,
            "python": self.context.python,
            "requirements": self.context.requirements,
        }


# --- what goes in ---------------------------------------------------------------------------


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_requirements(libraries: Mapping[str, str | None]) -> dict[str, str]:
    """``{distribution: version}`` for ``{module: recorded version or None}``.

    A module maps to the distribution that installs it (``sklearn`` → ``scikit-learn``);
    the recorded version wins when it is that distribution's release, so the image gets
    what the model was trained with even if this machine has moved on; a module recorded
    without a version gets the installed one.
    """
    owners = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for module, version in libraries.items():
        for dist in owners.get(module, []):
            if dist.lower() in NOT_LIBRARIES:
                continue
            installed = _installed(dist)
            if installed is None:
                continue
            # a distribution's own module reports its version; a vendored one may not
            found[dist] = version if version and _same_release(version, installed) else installed
    return found


def _same_release(a: str, b: str) -> bool:
    return a.split("+")[0] == b.split("+")[0]


def runtime_requirements() -> dict[str, str]:
    """keel's core, pinned to the versions installed here (those this keel is tested with)."""
    found: dict[str, str] = {}
    for name in RUNTIME:
        version = _installed(name)
        if version is not None:
            found[name] = version
    return found


def requirements_for(libraries: Mapping[str, str | None]) -> dict[str, str]:
    merged = runtime_requirements()
    lowered = {k.lower(): k for k in merged}
    for dist, version in library_requirements(libraries).items():
        merged[lowered.get(dist.lower(), dist)] = version
    return dict(sorted(merged.items(), key=lambda kv: kv[0].lower()))


def needed_libraries(
    recorded: Mapping[str, str], folder: Path | None = None, project_dir: Path | None = None
) -> dict[str, str | None]:
    """``{module: recorded version}`` of the modules the version in ``folder`` names (or the
    project's code imports): what the model needs, not all its training imported."""
    from keel.deploy.imports import modules_needed, project_imports

    if folder is not None:
        modules = modules_needed(folder)
    elif project_dir is not None:
        modules = project_imports(project_dir) + format_modules(project_dir)
    else:
        modules = []
    return {m: recorded.get(m) for m in modules}


#: the library each save format of keel.yml's ``model.formats`` needs to save and load
FORMAT_MODULES = {"skops": "skops", "joblib": "joblib", "cloudpickle": "cloudpickle"}


def format_modules(project_dir: Path) -> list[str]:
    """The libraries of the save formats keel.yml asks for (training writes them all)."""
    from keel.config import DEFAULT_CONFIG_NAME, load_config

    if not (project_dir / DEFAULT_CONFIG_NAME).is_file():
        return []  # an ML2P project (ml2p.yml): its code says what it saves with
    config = load_config(project_dir / DEFAULT_CONFIG_NAME)
    model = config.settings.model
    formats = (model.model_extra or {}).get("formats") if model is not None else None
    if isinstance(formats, str):
        formats = [formats]
    return [FORMAT_MODULES[f] for f in formats or [] if f in FORMAT_MODULES]


def ignored(relative: str, patterns: Iterable[str]) -> bool:
    parts = Path(relative).parts
    for pattern in patterns:
        pattern = pattern.strip().rstrip("/")
        if not pattern or pattern.startswith("#"):
            continue
        if fnmatch.fnmatch(relative, pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
            return True
    return False


def ignore_patterns(project_dir: Path) -> list[str]:
    patterns = list(IGNORED)
    for name in (".containerignore", ".dockerignore"):
        file = project_dir / name
        if file.is_file():
            patterns += file.read_text(encoding="utf-8").splitlines()
            break
    return patterns


def copy_project(project_dir: Path, target: Path, also_ignore: Iterable[Path] = ()) -> int:
    """Copy the project's files into ``target`` (the store, caches and ignores left out);
    the number of files copied."""
    patterns = ignore_patterns(project_dir)
    skip = {p.resolve() for p in also_ignore}
    count = 0
    for source in sorted(project_dir.rglob("*")):
        relative = source.relative_to(project_dir).as_posix()
        if ignored(relative, patterns) or any(
            source.resolve() == s or s in source.resolve().parents for s in skip
        ):
            continue
        destination = target / relative
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif source.is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
            count += 1
    return count


# --- installing the libraries for the image -------------------------------------------------


def _pip(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        tail = "\n".join(lines[-4:] or done.stderr.strip().splitlines()[-4:])
        raise KeelError(f"{what} failed (pip {' '.join(args[:2])} ...):\n{tail}")


def keel_source() -> str:
    """What pip installs keel from: its source folder when installed from one, else the
    same release from the package index."""
    from keel import __version__

    try:
        dist = importlib.metadata.distribution("keel")
        direct = dist.read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        direct = None
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://") and Path(url[7:]).is_dir():
            return url[7:]
    return f"keel=={__version__}"


def install_libraries(
    target: Path, requirements: Mapping[str, str], python: str, platform_tag: str
) -> None:
    """pip-install ``requirements`` (and their dependencies, pinned to this machine's
    versions) and keel into ``target`` for the image's Python and platform: wheels only, so
    nothing is compiled for the wrong one. ``requirements.txt`` and ``constraints.txt`` stay
    beside it, the record of what went in."""
    target.mkdir(parents=True, exist_ok=True)
    pins = target.parent / "requirements.txt"
    pins.write_text("".join(f"{k}=={v}\n" for k, v in requirements.items()), encoding="utf-8")
    # their dependencies at the versions installed here, where keel and the model ran
    from keel.tracking.environment import installed_distributions

    constraints = target.parent / "constraints.txt"
    constraints.write_text(
        "".join(
            f"{name}=={version}\n"
            for name, version in installed_distributions().items()
            if name not in NOT_LIBRARIES and name not in {r.lower() for r in requirements}
        ),
        encoding="utf-8",
    )
    _pip(
        [
            "install",
            "--quiet",
            "--target",
            str(target),
            "--only-binary=:all:",
            "--python-version",
            python,
            "--implementation",
            "cp",
            *(arg for tag in platform_tags(platform_tag) for arg in ("--platform", tag)),
            "-r",
            str(pins),
            "-c",
            str(constraints),
        ],
        f"installing the image's libraries for Python {python} ({platform_tag})",
    )
    _pip(
        ["install", "--quiet", "--no-deps", "--target", str(target), keel_source()],
        "installing keel into the image",
    )
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts name this Python
    drop_test_suites(target)


def drop_test_suites(target: Path) -> int:
    """Remove the libraries' own test suites (``pandas/tests``, ``scipy/*/tests``, ...):
    a fifth of a scientific stack's size that a served model never imports. Bytes freed."""
    freed = 0
    for folder in sorted(target.glob("*/**/tests")):
        if folder.is_dir() and (folder.parent / "__init__.py").is_file():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
    return freed


def default_platform(glibc: str = DEFAULT_GLIBC) -> str:
    return f"manylinux_{glibc}_{platform.machine()}"


#: the old names of manylinux tags (PEP 600)
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def platform_tags(tag: str) -> list[str]:
    """``manylinux_2_36_x86_64`` and every older glibc's tag, which it runs too (older pip
    does not expand them itself); another tag as it is."""
    import re

    found = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", tag)
    if found is None:
        return [tag]
    newest, arch = int(found.group(1)), found.group(2)
    tags = []
    for minor in range(newest, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY:
            tags.append(f"{_LEGACY[minor]}_{arch}")
    return tags


# --- the context ----------------------------------------------------------------------------

CONTAINERFILE = """\
# Written by `keel container build` ({what}).
# Build: podman build -t {tag} .   (or docker build / buildah bud)
FROM {base}
COPY site-packages/ {root}/site-packages/
COPY bin/ {root}/bin/
COPY project/ {root}/project/
{model_copy}ENV PYTHONPATH={root}/site-packages \\
    PATH={path} \\
    PYTHONUNBUFFERED=1 \\
    KEEL_IMAGE=1
WORKDIR {root}/project
EXPOSE 8080
{labels}ENTRYPOINT ["python3", "-m", "keel.cli", "container", "entrypoint"]
CMD ["serve"]
"""

KEEL_SCRIPT = """\
#!/usr/bin/env python3
# keel inside the image (its libraries are in {root}/site-packages, on PYTHONPATH)
from keel.cli import main

main()
"""


def default_tag(model: str | None, version: int | None, project: str | None) -> str:
    if model is not None:
        return f"keel-{model}:{version}" if version is not None else f"keel-{model}:latest"
    return f"keel-{project or 'project'}:latest"


def write_context(
    folder: Path,
    *,
    project_dir: Path | None,
    client: Client | None = None,
    ref: str | None = None,
    base: str | None = None,
    tag: str | None = None,
    python: str = DEFAULT_PYTHON,
    platform_tag: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> BuildContext:
    """Write the build context of version ``ref`` (from ``client``'s store) or, without
    one, of the project in ``project_dir`` (an image to train in)."""
    from keel.deploy.model_dir import export_model_dir

    started = time.perf_counter()
    if folder.exists() and any(folder.iterdir()):
        raise InvalidInput(f"{folder} is not empty: name a new folder for the build context")
    base = base or f"python:{python}-slim"
    folder.mkdir(parents=True, exist_ok=True)
    info = None
    libraries: Mapping[str, str | None] = {}
    labels = {"org.opencontainers.image.title": "keel model image", "keel.python": python}
    if ref is not None:
        if client is None:
            raise ConfigError("a version to build needs the store it is in")
        progress(f"exporting {ref}")
        info = export_model_dir(client, ref, folder / "model")
        from keel.deploy.model_dir import VERSION
        from keel.lifecycle.artifact import Manifest

        recorded = Manifest.read(folder / "model" / VERSION).libraries
        progress(f"finding the libraries {ref} needs")
        libraries = needed_libraries(recorded, folder=folder / "model" / VERSION)
        labels |= {"keel.model": info.model, "keel.version": str(info.version)}
        labels["keel.content_hash"] = info.content_hash
    elif project_dir is not None:
        progress("finding the libraries the model code needs")
        libraries = needed_libraries({}, project_dir=project_dir)
    (folder / "project").mkdir()
    if project_dir is not None:
        progress(f"copying the project {project_dir}")
        copy_project(project_dir, folder / "project", also_ignore=[folder])
    requirements = requirements_for(libraries)
    progress(f"installing {len(requirements)} libraries for Python {python}")
    install_libraries(
        folder / "site-packages", requirements, python, platform_tag or default_platform()
    )
    (folder / "bin").mkdir()
    script = folder / "bin" / "keel"
    script.write_text(KEEL_SCRIPT.format(root=IMAGE_ROOT), encoding="utf-8")
    script.chmod(0o755)
    tag = tag or default_tag(
        info.model if info else None, info.version if info else None, _project_name(project_dir)
    )
    what = f"model {info.ref}" if info else f"project {project_dir}"
    label_lines = "".join(f'LABEL {k}="{v}"\n' for k, v in labels.items())
    (folder / "Containerfile").write_text(
        CONTAINERFILE.format(
            what=what,
            tag=tag,
            base=base,
            root=IMAGE_ROOT,
            path=PATH,
            model_copy=f"COPY model/ {IMAGE_ROOT}/model/\n" if info else "",
            labels=label_lines,
        ),
        encoding="utf-8",
    )
    return BuildContext(
        folder=folder,
        tag=tag,
        base=base,
        python=python,
        requirements=requirements,
        model=info.ref if info else None,
        seconds=time.perf_counter() - started,
        labels=labels,
    )


def _project_name(project_dir: Path | None) -> str | None:
    if project_dir is None:
        return None
    import re

    return re.sub(r"[^a-z0-9._-]", "-", project_dir.resolve().name.lower()) or None


# --- builders -------------------------------------------------------------------------------

BUILDERS: dict[str, list[str]] = {
    "podman": ["podman", "build"],
    "docker": ["docker", "build"],
    "buildah": ["buildah", "bud"],
}


def build(context: BuildContext, builder: str) -> BuiltImage:
    """Build the context with ``builder`` (podman, docker or buildah); time and size it."""
    if builder not in BUILDERS:
        raise InvalidInput(f"unknown builder {builder!r}: use one of {', '.join(BUILDERS)}")
    command = BUILDERS[builder]
    if shutil.which(command[0]) is None:
        raise ConfigError(
            f"{command[0]} is not installed: install it, or build the context yourself "
            f"({' '.join(command)} -t {context.tag} {context.folder})"
        )
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "-t", context.tag, "-f", str(context.containerfile), str(context.folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise KeelError(f"{builder} could not build {context.tag}:\n{tail}")
    return BuiltImage(context, builder, context.tag, image_size(builder, context.tag), seconds)


def image_size(builder: str, tag: str) -> int | None:
    """The image's size in bytes as the builder's storage reports it (None if it cannot)."""
    tool = "docker" if builder == "docker" else "podman"
    if shutil.which(tool) is None:
        return None
    done = subprocess.run(
        [tool, "image", "inspect", "--format", "{{.Size}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return int(done.stdout.strip())
    except ValueError:
        return None
