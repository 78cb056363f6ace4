"""Shared by the deploy tests: the keel command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def keel_cli(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``keel ARGS`` in a subprocess in ``cwd``: the completed process (text)."""
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
