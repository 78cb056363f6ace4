"""Deselects the MLflow server tests keel does not claim, listed in out_of_scope.txt.

Loaded by keel_mlflow_plugin.py, and alone (``run.py --mlflow``) for MLflow's own baseline;
``KEEL_CONFORMANCE_ALL=1`` keeps every test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OUT_OF_SCOPE = Path(__file__).resolve().parent / "out_of_scope.txt"


def _out_of_scope() -> dict[str, str]:
    """``test name -> reason`` from out_of_scope.txt (``name  # reason`` lines; a
    ``## reason`` line gives the reason of the names under it)."""
    reasons: dict[str, str] = {}
    reason = ""
    for raw in OUT_OF_SCOPE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("##"):
            reason = line.lstrip("# ").strip()
        elif line and not line.startswith("#"):
            name, _, own = line.partition("#")
            reasons[name.strip()] = own.strip() or reason
    return reasons


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KEEL_CONFORMANCE_ALL"):
        return
    reasons = _out_of_scope()
    kept, dropped = [], []
    for item in items:
        name = item.nodeid.split("::", 1)[-1].split("[", 1)[0]
        (dropped if name in reasons else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
