"""The newcomer's path after the install: ``make demo``'s script in a copy of the repository,
run twice, then the CLI from the repository root and from ``examples/iris`` as
examples/iris/README.md says, finding what the demo made.

The copy holds a ``.git`` folder (the top of a work tree, where keel looks for ``.keel``) and
keel's ``examples/`` folder; the script is the repository's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.newcomer, pytest.mark.slow]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["COLUMNS"] = "250"
    return subprocess.run(
        list(args), capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=600
    )


def keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "keel.cli", *args, cwd=cwd)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone's shape after ``make demo`` (its script; the server is started elsewhere)."""
    repo = tmp_path_factory.mktemp("clone")
    (repo / ".git").mkdir()
    shutil.copytree(
        ROOT / "examples",
        repo / "examples",
        ignore=shutil.ignore_patterns(".keel", "output", "__pycache__"),
    )
    out = ok(run(sys.executable, "examples/demo.py", cwd=repo))
    assert "registered linear v1 as production" in out
    assert "registered iris version 1" in out
    return repo


def test_the_demo_says_each_step_and_run_again_makes_nothing_twice(demo_repo: Path) -> None:
    def counts() -> tuple[int, int, int]:
        runs = json.loads(ok(keel("--project", "demo", "runs", "list", "--json", cwd=demo_repo)))
        linear = json.loads(
            ok(keel("--project", "demo", "models", "show", "linear", "--json", cwd=demo_repo))
        )
        iris = json.loads(
            ok(keel("--project", "examples", "models", "show", "iris", "--json", cwd=demo_repo))
        )
        return len(runs), len(linear["versions"]), len(iris["versions"])

    before = counts()
    assert before[1:] == (1, 1)
    again = ok(run(sys.executable, "examples/demo.py", cwd=demo_repo))
    assert "the grid search is already in the store" in again
    assert "iris version 1 is already registered: not trained again" in again
    assert counts() == before
    assert not (demo_repo / "examples" / ".keel").exists()


def test_the_cli_finds_the_demo_from_the_repository_root(demo_repo: Path) -> None:
    listed = ok(keel("runs", "list", cwd=demo_repo))
    assert "grid-search" in listed or "demo" in listed, listed
    shown = keel("models", "show", "iris", cwd=demo_repo)
    assert shown.returncode == 0, shown.stderr
    assert "versions of iris" in shown.stdout
    assert not (demo_repo / "default").exists()


def test_the_iris_readme_commands_work_in_examples_iris(demo_repo: Path) -> None:
    iris = demo_repo / "examples" / "iris"
    predicted = json.loads(ok(keel("predict", "input.json", cwd=iris)))
    assert predicted["species"] == "versicolor" and set(predicted["probabilities"]) == {
        "setosa",
        "versicolor",
        "virginica",
    }
    assert not (iris / ".keel").exists(), "the repository's store is used, not a new one"
    shown = ok(keel("models", "show", "iris", cwd=iris))
    assert "versions of iris" in shown
