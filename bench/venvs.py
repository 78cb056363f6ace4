"""Peers that cannot share keel's venv (Evidently, BentoML, MLflow's Go backend) get one each.

A peer's venv is built on first use from a requirements file of pinned versions and counts as
built when its ``.installed`` marker holds the requirements it was built from, so editing the
file rebuilds it (``make bench-evidently-venv`` writes the same marker).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parent.parent


def peer_python(
    venv: Path,
    requirements: Path,
    *,
    what: str,
    console: Console | None = None,
    create: bool = True,
    hint: str = "",
    error: type[Exception] = RuntimeError,
) -> Path:
    """The python of ``venv``, built first (``python -m venv`` + ``pip install -r``) if it is
    missing or out of date.

    Raises ``error`` when it is not built and ``create`` is False (saying ``hint``: how to
    build it), or when the build fails.
    """
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    wanted = requirements.read_text()
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if not create:
        raise error(f"{what}'s venv {venv} is not built: {hint}")
    if console is not None:
        shown = (
            requirements.relative_to(REPO) if requirements.is_relative_to(REPO) else requirements
        )
        console.print(
            f"[yellow]building {what}'s venv {venv} (python -m venv, then pip install -r "
            f"{shown}); once, a minute or two[/yellow]"
        )
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(requirements)],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise error(
                f"building {venv} failed ({' '.join(step[:4])} …): "
                f"{(done.stderr or done.stdout).strip()[-600:]}"
            )
    marker.write_text(wanted)
    return python
