"""Run MLflow's own server test files against ``keel server`` and count what passes per file.

    python conformance/mlflow/run.py MLFLOW_CHECKOUT [--mlflow] [-k EXPR] [--json] [PYTEST ARGS]

MLFLOW_CHECKOUT holds MLflow's ``tests/`` folder (a clone of ``mlflow/mlflow`` or a fork, or
just its ``tests`` tree and ``pyproject.toml``). The files run unmodified; the plugin beside
this script swaps their server fixtures for a fresh keel server (``--mlflow`` runs them on
MLflow's own server instead, for the baseline). Needs, in the running interpreter: keel,
``mlflow==3.17.2`` (requirements/dev.lock), ``pytest-asyncio`` and ``pytest-timeout`` (MLflow's
tests use them). The tests of the API keel does not claim are listed, with their reasons, in
``out_of_scope.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = (
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
    "tests/tracking/test_mlflow_artifacts.py",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run MLflow's server tests against keel server.",
        epilog="example: python conformance/mlflow/run.py ~/src/mlflow -k registered_model",
    )
    parser.add_argument("checkout", type=Path, help="a folder holding MLflow's tests/")
    parser.add_argument("--mlflow", action="store_true", help="run on MLflow's own server")
    parser.add_argument("-k", dest="keyword", help="pytest's -k expression")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    # anything else (`--tb=line`, `-x`, `-- -p no:randomly`) goes to pytest as it is
    args, pytest_args = parser.parse_known_args(argv)
    pytest_args = [a for a in pytest_args if a != "--"]
    checkout = args.checkout.resolve()
    missing = [f for f in FILES if not (checkout / f).is_file()]
    if missing:
        parser.error(f"{checkout} has no {', '.join(missing)}: give a checkout of mlflow/mlflow")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        command = [
            sys.executable, "-m", "pytest", *FILES,
            "-o", "addopts=", "-p", "no:cacheprovider", "-q", "-rfE",
            f"--junitxml={report}", "-o", "junit_family=xunit1",
        ]  # fmt: skip
        if args.mlflow:
            command += ["-p", "keel_out_of_scope"]
        else:
            command += ["-p", "keel_mlflow_plugin"]
        if args.keyword:
            command += ["-k", args.keyword]
        command += pytest_args
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(checkout)]),
            # MLflow's artifact tests start `mlflow server` by name: this interpreter's one
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        }
        subprocess.run(command, cwd=checkout, env=env, check=False)
        counts = _counts(report)
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(f"\n{'file':<40} {'passed':>7} {'failed':>7} {'skipped':>8}")
        for file, count in counts.items():
            print(f"{file:<40} {count['passed']:>7} {count['failed']:>7} {count['skipped']:>8}")
    return 0 if all(c["failed"] == 0 for c in counts.values()) else 1


def _counts(report: Path) -> dict[str, dict[str, int]]:
    """passed/failed/skipped per test file, from pytest's JUnit XML."""
    per_file: dict[str, Counter[str]] = {Path(f).name: Counter() for f in FILES}
    if not report.exists():
        return {name: dict(c) for name, c in per_file.items()}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = Path(case.get("file") or "").name or case.get("classname", "").split(".")[-1] + ".py"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        per_file.setdefault(name, Counter())[outcome] += 1
    return {
        name: {k: c.get(k, 0) for k in ("passed", "failed", "skipped")}
        for name, c in per_file.items()
    }


if __name__ == "__main__":
    sys.exit(main())
