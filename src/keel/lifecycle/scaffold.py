"""``keel init``: write a runnable example project in one of the four styles, named after
the project it starts (its keel.yml's project, model and API names, and its README)."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

from keel.errors import Conflict, InvalidInput
from keel.store.validation import check_name

STYLES = {
    "keel": "iris",
    "launchpad": "launchpad_style",
    "ml2p": "ml2p_style",
    "mlopen": "mlopen_pipeline",
}
_SKIP = {".keel", "output", "__pycache__", ".pytest_cache"}


def examples_root() -> Path:
    """Where the example projects are: inside the installed package (a wheel), or the
    repository's ``examples/`` (an editable install)."""
    packaged = Path(str(resources.files("keel"))) / "examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "examples"


def init_project(
    target: str | Path, style: str = "keel", force: bool = False, name: str | None = None
) -> list[Path]:
    """Copy the example project of ``style`` into ``target``; returns the files written.

    The project, its model and its API are named ``name`` (default: the target folder's
    name), so two projects made by ``keel init`` never share a model in one store.
    Existing files are never overwritten unless ``force``: the call fails first, naming them.
    """
    target = Path(target)
    name = name or target.resolve().name
    check_name(name, "project name")
    if style not in STYLES:
        raise InvalidInput(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    source = examples_root() / STYLES[style]
    if not source.is_dir():
        raise InvalidInput(f"the {style} example is missing from this installation ({source})")
    files = [
        p
        for p in sorted(source.rglob("*"))
        if p.is_file() and not _SKIP & set(p.relative_to(source).parts)
    ]
    clashes = [
        target / p.relative_to(source) for p in files if (target / p.relative_to(source)).exists()
    ]
    if clashes and not force:
        names = ", ".join(str(c) for c in clashes[:5]) + (" …" if len(clashes) > 5 else "")
        raise Conflict(f"keel init would overwrite {names}; use --force or another folder")
    written = []
    for path in files:
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        relative = path.relative_to(source).as_posix()
        if relative == "keel.yml":
            dest.write_text(_renamed_config(path.read_text(encoding="utf-8"), name), "utf-8")
        elif relative == "README.md":
            example_model = _example_model((source / "keel.yml").read_text(encoding="utf-8"))
            readme = _readme(path.read_text(encoding="utf-8"), name, style, example_model)
            dest.write_text(readme, "utf-8")
        else:
            shutil.copyfile(path, dest)
        written.append(dest)
    return written


def _example_model(config_text: str) -> str:
    found = re.search(r"^model:\n(?:[ \t]+.*\n)*?[ \t]+name:[ \t]*(\S+)", config_text, re.M)
    return found.group(1) if found else ""


def _renamed_config(text: str, name: str) -> str:
    """The example's keel.yml with the project, the model and the API named ``name``; edited
    line by line so its comments stay."""
    old_model = _example_model(text)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "model"
    text = re.sub(r"^project:.*$", f"project: {_yaml_str(name)}", text, count=1, flags=re.M)
    section = ""
    lines = []
    for line in text.splitlines(keepends=True):
        top = re.match(r"^([A-Za-z_]\w*):", line)
        if top:
            section = top.group(1)
        if section in ("model", "api") and re.match(r"^  name:", line):
            value = _yaml_str(name) if section == "model" else slug
            line = re.sub(r"^(  name:[ \t]*)\S+", lambda m, v=value: m.group(1) + v, line)
        if old_model:
            # the served URL and the commands the comments quote: /iris/v1/species and
            # `keel invocations list iris` name the new model
            line = line.replace(f"/{old_model}/", f"/{slug}/")
            line = line.replace(f"invocations list {old_model}", f"invocations list {slug}")
        lines.append(line)
    return "".join(lines)


def _yaml_str(value: str) -> str:
    import json

    # a JSON string is a YAML string: quoted only when it must be
    return value if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) else json.dumps(value)


def _readme(example_readme: str, name: str, style: str, example_model: str) -> str:
    """A README for project ``name``: what ``keel init`` made it from, then the example's
    notes on its files and commands (naming the new model where they name the example's)."""
    body = example_readme.split("\n", 1)[1] if example_readme.startswith("#") else example_readme
    if example_model:
        body = re.sub(
            rf"(--dataset |dataset |registers ){re.escape(example_model)}\b",
            lambda m: m.group(1) + name,
            body,
        )
    return (
        f"# {name}\n\n"
        f"Made by `keel init` from keel's {style}-style example ({STYLES[style]}): "
        f"project `{name}`, model `{name}` (see keel.yml). Replace the model code and data "
        "with your own; the notes below describe the example as written.\n" + body
    )
