"""Every keel command given bad input answers in one line (or click's usage block), never a
traceback, and exits non-zero.

The commands are found by walking the click tree (groups and the compat verbs ``keel ml2p …``,
``keel ml2p-docker …`` included), so a new command is covered without a change here. Each runs
in this process through :func:`keel.cli.main` (what the console script calls) with bad inputs
built from its own parameters: required arguments left out, placeholders for names that do
not exist, a config file that does not exist, a folder without keel.yml or store, malformed
JSON where JSON is read. A few run as real subprocesses, to see what a user's terminal shows.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from keel.cli import cli, main

pytestmark = pytest.mark.newcomer


def _leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _leaves(sub, (*path, name))
    else:
        yield path


COMMANDS = sorted(" ".join(path) for path in _leaves(cli))

#: commands that need no input: run with nothing in an empty folder they succeed (they make
#: an example, a store, a report, or list nothing), so that case is not bad input for them
NEEDS_NO_INPUT = {
    "init",
    "db upgrade",
    "doctor",
    "data list",
    "gc",
    "users list",
    "tokens list",
    "jobs list",
    "runs list",
    "models list",
    "experiments list",
    "datasets list",
}
#: commands that read no config (a missing -c file is not their input)
READS_NO_CONFIG = {"init"}
#: commands whose answer is a report on stdout (a table of checks), not one error line
REPORTS = {"doctor"}
#: more arguments a command gets in every case, so it fails fast instead of waiting or serving
EXTRA = {
    # waits for an endpoint to answer (ten minutes by default)
    "ml2p endpoint wait": ["--timeout", "0.05"],
    # the platform server: a store URL no backend serves, so it never starts
    "server": ["--store", "nope://nowhere", "--port", "1"],
    # never a prompt on the terminal running the tests
    "users add": ["--password-stdin"],
    "users passwd": ["--password-stdin"],
    "users remove": ["--yes"],
}
#: what the command reads on stdin (users: a password too short to accept)
STDIN = {"users add": "x\n", "users passwd": "x\n"}


def _command(name: str) -> click.Command:
    command: click.Command = cli
    for part in name.split():
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), part)
        assert found is not None
        command = found
    return command


def _placeholders(command: click.Command) -> list[str]:
    """A value for every required parameter, naming nothing that exists."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.File | click.Path):
            value = "missing.json"
        else:
            value = "nonexistent"
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return args


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str
) -> tuple[int, str, str]:
    """``keel ARGV`` in this process: its exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["keel", *argv])  # main() looks for -v there too
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def assert_short_error(code: int, out: str, err: str, what: str) -> None:
    """A failure a person reads at a glance: no traceback, no "unexpected exception" line
    (main()'s catch-all for what keel did not expect), one error line or click's usage."""
    assert code != 0, f"{what}: exit 0 with bad input\n{out}{err}"
    assert "Traceback" not in err + out, f"{what}: a traceback\n{err}"
    assert "rerun with -v for the traceback" not in err, f"{what}: an unexpected exception\n{err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, f"{what}: exit {code} without a word on stderr"
    # click's usage block: Usage, Try --help, Error (`keel monitor drift` also exits 2 with
    # keel's one error line: its 1 means "drifted")
    if code == 2 and not lines[-1].startswith("error:"):
        assert lines[-1].startswith("Error:"), f"{what}: {err}"
        assert len(lines) <= 4, f"{what}: a usage block of {len(lines)} lines\n{err}"
        return
    errors = [line for line in lines if line.lower().startswith("error:") or line == "aborted"]
    assert len(errors) == 1, f"{what}: expected one error line\n{err}"
    assert errors[0] == lines[-1], f"{what}: lines after the error\n{err}"


def _check(
    name: str,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    may_succeed: bool = False,
    stdin: str = "{not json",
) -> None:
    code, out, err = _run(argv, capsys, monkeypatch, STDIN.get(name, stdin))
    what = f"keel {' '.join(argv)}"
    if (may_succeed and code == 0) or name in REPORTS:
        assert "Traceback" not in err + out, f"{what}: a traceback\n{err}"
        assert "rerun with -v for the traceback" not in err + out, f"{what}: {err}"
        return
    assert_short_error(code, out, err, what)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded store with keel's tables and nothing in them (made once, copied per test)."""
    folder = tmp_path_factory.mktemp("empty-store")
    done = subprocess.run(
        [sys.executable, "-m", "keel.cli", "--store", str(folder / ".keel"), "db", "upgrade"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
    )
    assert done.returncode == 0, done.stderr
    return folder / ".keel"


def test_the_walk_finds_every_kind_of_command() -> None:
    for name in ("runs list", "train", "predict", "serve", "ml2p dataset list", "db upgrade"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_missing_required_arguments(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = _command(name)
    if not any(p.required for p in command.params):
        pytest.skip("no required parameter")
    code, out, err = _run(name.split(), capsys, monkeypatch, "")
    assert code == 2, f"keel {name}: exit {code}\n{err}"
    assert "Usage:" in err
    assert_short_error(code, out, err, f"keel {name}")


@pytest.mark.parametrize("name", COMMANDS)
def test_in_a_folder_without_keel_yml_or_store(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*name.split(), *_placeholders(_command(name)), *EXTRA.get(name, [])]
    _check(name, argv, capsys, monkeypatch, may_succeed=name in NEEDS_NO_INPUT)
    if name not in NEEDS_NO_INPUT:
        assert not (tmp_path / ".keel").exists(), f"keel {name} failed but left a store behind"


@pytest.mark.parametrize("name", COMMANDS)
def test_with_a_config_file_that_does_not_exist(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["-c", "missing.yml", *name.split(), *_placeholders(_command(name))]
    argv += EXTRA.get(name, [])
    _check(name, argv, capsys, monkeypatch, may_succeed=name in READS_NO_CONFIG)


@pytest.mark.parametrize("name", COMMANDS)
def test_names_that_do_not_exist_in_a_store(
    name: str,
    empty_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(empty_store, tmp_path / ".keel")
    argv = [*name.split(), *_placeholders(_command(name)), *EXTRA.get(name, [])]
    _check(name, argv, capsys, monkeypatch, may_succeed=name in NEEDS_NO_INPUT)


QUERY_COMMANDS = [n for n in COMMANDS if any(p.name == "query" for p in _command(n).params)]


@pytest.mark.parametrize("name", QUERY_COMMANDS)
def test_malformed_json_query(
    name: str,
    empty_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(empty_store, tmp_path / ".keel")
    for bad in ('{"metrics.acc": ', "[1, 2]"):
        argv = [*name.split(), *_placeholders(_command(name)), "--query", bad]
        code, out, err = _run(argv, capsys, monkeypatch, "")
        assert code == 2, err
        assert "--query" in err
        assert_short_error(code, out, err, f"keel {' '.join(argv)}")


def test_malformed_json_to_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keel.yml").write_text("model: {name: m, module: m}\n")
    (tmp_path / ".keel").mkdir()  # found: the input is what is wrong
    (tmp_path / "bad.json").write_text('{"x": 1,,}')
    code, out, err = _run(["predict", "bad.json"], capsys, monkeypatch, "")
    assert_short_error(code, out, err, "keel predict bad.json")
    assert "bad.json line 1 column 9: not valid JSON" in err
    code, out, err = _run(["predict", "-"], capsys, monkeypatch, "{nope")
    assert_short_error(code, out, err, "keel predict -")
    assert "stdin line 1" in err
    code, out, err = _run(["predict", "missing.json"], capsys, monkeypatch, "")
    assert code == 2 and "missing.json" in err
    code, out, err = _run(["ml2p", "endpoint", "invoke", "e", "{bad"], capsys, monkeypatch, "")
    assert_short_error(code, out, err, "keel ml2p endpoint invoke e {bad")


# --- as a user's terminal shows it -------------------------------------------------------


def keel(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=cwd,
        env={**env, "KEEL_CACHE_DIR": str(cwd / "cache")},
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_train_and_serve_without_keel_yml_say_so_before_touching_a_store(tmp_path: Path) -> None:
    (tmp_path / ".keel").mkdir()  # an empty store folder: found, so not the complaint
    for args in (["train"], ["serve"], ["retest"], ["generate-dataset"], ["predict", "-"]):
        done = keel(*args, cwd=tmp_path, stdin="{}")
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(f"error: no keel.yml found in {tmp_path}"), done.stderr
        assert "keel init NAME" in done.stderr and "-c FILE" in done.stderr
        assert len(done.stderr.splitlines()) == 1
    assert list((tmp_path / ".keel").iterdir()) == []  # nothing created in the store
    (tmp_path / "keel.yml").write_text("project: p\n")
    for args in (["train"], ["serve"]):
        done = keel(*args, cwd=tmp_path)
        assert done.returncode == 1
        assert "keel.yml" in done.stderr and "has no model: section" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert list((tmp_path / ".keel").iterdir()) == []


def test_a_store_error_is_one_line_in_a_real_terminal(tmp_path: Path) -> None:
    for args in (
        ["runs", "show", "0" * 32],
        ["models", "show", "iris@production"],
        ["runs", "list", "--query", "{"],
        ["--store", "nope://x", "runs", "list"],
    ):
        done = keel(*args, cwd=tmp_path)
        assert done.returncode in (1, 2), done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1].lower().startswith("error:"), done.stderr


def test_a_password_prompt_without_a_terminal_says_to_pipe_it_in(tmp_path: Path) -> None:
    """getpass without a terminal warns over several lines, then reads with echo on."""
    for command in (["users", "add", "ann"], ["users", "passwd", "ann"]):
        done = subprocess.run(
            [sys.executable, "-m", "keel.cli", "--store", str(tmp_path / "s"), *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "GetPassWarning" not in done.stderr and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "Error: no terminal to ask for the password on: pipe it in with --password-stdin"
        )


def test_an_error_in_code_without_a_file_names_the_function_and_line() -> None:
    """Model code unpickled by value (a version's stored code) has no file to point at."""
    from keel.cli import _raised_at

    namespace: dict[str, object] = {}
    exec(compile("def predict(x):\n    return x['missing']\n", "<dynamic-code>", "exec"), namespace)
    try:
        namespace["predict"]({})  # type: ignore[operator]
    except KeyError as exc:
        where = _raised_at(exc)
    assert where == (
        "in predict() of the model version's stored code, line 2; "
        "--live-code runs keel.yml's module instead"
    )
