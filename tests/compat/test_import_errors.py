"""Model code that cannot be imported is one line naming the file and the error, for every
command that imports it (train, retest with live code, predict, generate-dataset, serve)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from test_cli import keel

BROKEN = {
    "raises": ("import json\nVALUE = 1 / 0\n", "line 2", "ZeroDivisionError: division by zero"),
    "syntax": ("def f(:\n    pass\n", "line 1", "syntax error"),
    "dependency": ("import not_an_installed_package\n", "line 1", "not_an_installed_package"),
}

COMMANDS = {
    "train": ("train",),
    "generate-dataset": ("generate-dataset",),
    "predict --live-code": ("predict", "-", "--live-code"),
}

GOOD = """\
import keel


class Echo(keel.Model):
    def train(self, ctx):
        return 1

    def predict(self, ctx, fitted, inputs):
        return {"y": fitted}
"""


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "keel.yml").write_text(
        "project: t\nmodel: {name: echo, version: '1.0.0', module: echo_model}\n"
    )
    (tmp_path / "echo_model.py").write_text(GOOD)
    # a version exists, so commands that need one get as far as importing the code
    assert keel("train", cwd=tmp_path).returncode == 0
    return tmp_path


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_broken_model_module_is_one_line_naming_file_and_error(
    project: Path, command: str, broken: str
) -> None:
    source, line, error = BROKEN[broken]
    module = project / "echo_model.py"
    module.write_text(source)
    result = keel(*COMMANDS[command], cwd=project, stdin="{}")
    message = one_error_line(result)
    assert f"{module} {line}" in message
    assert error in message


def test_missing_model_module_names_the_folder(project: Path) -> None:
    (project / "echo_model.py").unlink()
    message = one_error_line(keel("train", cwd=project))
    assert "no module 'echo_model'" in message and str(project) in message
