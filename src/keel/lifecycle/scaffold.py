"""``keel init``: write a runnable example project in one of the four styles."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from keel.errors import Conflict, InvalidInput

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


def init_project(target: str | Path, style: str = "keel", force: bool = False) -> list[Path]:
    """Copy the example project of ``style`` into ``target``; returns the files written.

    Existing files are never overwritten unless ``force``: the call fails first, naming them.
    """
    if style not in STYLES:
        raise InvalidInput(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    source = examples_root() / STYLES[style]
    if not source.is_dir():
        raise InvalidInput(f"the {style} example is missing from this installation ({source})")
    target = Path(target)
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
        shutil.copyfile(path, dest)
        written.append(dest)
    return written
