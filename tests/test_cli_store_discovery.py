"""Which store a command uses, and what it says when what is asked for is elsewhere.

The default store is the ``.keel`` folder found from the working directory up to the top
of the git work tree (as git finds ``.git``); commands that only read a store refuse to run
where there is none instead of creating an empty one; a failed command takes back an empty
``./.keel`` it made; not-found errors name the store, the project and the projects that hold
the name. Each test runs the real ``keel`` command against a real SQLite store in tmp_path,
whose ``.git`` folder makes it the top of a "repository".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel import Client
from keel.cli import main
from keel.errors import NotInProject
from keel.store.engine import dispose_engines, holds_records
from keel.tracking.settings import find_default_store, resolve_settings

pytestmark = pytest.mark.newcomer


def keel(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "250", **(env or {})}
    for name in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS", "KEEL_CACHE_DIR"):
        if not env or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        check=False,
    )


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command prints (no traceback)."""
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A "repository" holding a store like ``make demo``'s: runs, model ``linear`` and a
    dataset in project ``demo``; model ``iris`` in project ``examples``; nothing in
    ``default``; and ``examples/iris/keel.yml`` naming project ``examples``."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "examples" / "iris").mkdir(parents=True)
    (root / "examples" / "iris" / "keel.yml").write_text("project: examples\n")
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    for project, model, runs in (("demo", "linear", 4), ("examples", "iris", 2)):
        client = Client(store=str(root / ".keel"), project=project)
        for i in range(runs):
            with client.start_run(f"{project}-grid", name=f"run-{i}") as run:
                run.log_metrics({"acc": 0.9 + i / 100})
                if i == 0:
                    client.log_model_version(model, run, weights)
        if project == "demo":
            client.log_dataset("demo-data", weights)
        client.close()
    dispose_engines()
    return root


def test_a_subfolder_finds_the_repository_store(repo: Path) -> None:
    iris = repo / "examples" / "iris"
    shown = keel("models", "show", "iris", cwd=iris)  # keel.yml: project examples
    assert shown.returncode == 0, shown.stderr
    assert "versions of iris" in shown.stdout
    listed = keel("runs", "list", cwd=iris)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("run-") == 2
    assert not (iris / ".keel").exists() and not (repo / "examples" / ".keel").exists()


def test_the_python_api_finds_the_same_store_with_its_artifacts_and_cache(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEEL_STORE", "KEEL_ARTIFACTS", "KEEL_CACHE_DIR", "KEEL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(repo / "examples" / "iris")
    settings = resolve_settings()
    store = repo / ".keel"
    assert Path(settings.store) == store
    assert Path(settings.artifacts) == store / "artifacts"
    assert settings.cache_dir == store / "cache"
    assert settings.project == "examples" and settings.project_origin == "config"
    client = Client()
    assert client.get_model("iris").name == "iris"
    client.close()


def test_outside_a_git_work_tree_only_the_working_directory_is_looked_at(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain"
    Client(store=str(plain / ".keel")).get_or_create_exp("here")
    dispose_engines()
    below = plain / "sub"
    below.mkdir()
    assert find_default_store(below).found is None
    assert find_default_store(plain).found == plain / ".keel"
    out = one_line(keel("runs", "list", cwd=below))
    assert out.startswith(f"error: no keel store here: looked for .keel in {below};")
    assert "and its parents" not in out
    assert not (below / ".keel").exists()


def test_the_search_stops_at_the_top_of_the_nearest_git_work_tree(repo: Path) -> None:
    inner = repo / "vendor" / "lib"
    (inner / ".git").mkdir(parents=True)  # a nested repository (e.g. a submodule)
    below = inner / "src"
    below.mkdir()
    search = find_default_store(below)
    assert search.found is None and search.top == inner
    out = one_line(keel("models", "list", cwd=below))
    assert f"looked for .keel in {below} and its parents up to {inner};" in out


READ_ONLY = [
    ("runs", "list"),
    ("runs", "show", "0" * 32),
    ("experiments", "list"),
    ("experiments", "show", "iris"),
    ("models", "list"),
    ("models", "show", "iris@production"),
    ("datasets", "list"),
    ("datasets", "show", "iris-data"),
    ("invocations", "list", "iris"),
    ("predict", "--arg", "x=1"),
    ("retest",),
    ("batch-predict", "--source", "a", "--sink", "b"),
    ("serve",),
    ("gc",),
    ("ru", "li"),  # a prefix is the same command
]


def test_read_only_commands_where_there_is_no_store_say_so_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # in this process (main() as the console script calls it): 15 commands, no store opened
    for name in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "keel.yml").write_text("project: p\n")
    below = root / "sub"
    below.mkdir()
    # predict, retest, batch-predict and serve read their keel.yml first (a mistake in it is
    # what they report): here it is fine, and the missing store is what they say
    (below / "keel.yml").write_text("project: p\nmodel: {name: m, module: m}\n")
    monkeypatch.chdir(below)
    for args in READ_ONLY:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        assert exited.value.code == 1, args
        assert capsys.readouterr().err == (
            f"error: no keel store here: looked for .keel in {below} and its parents up to "
            f"{root}; create one with `keel train` (or `make demo` in keel's repository), "
            "or pass --store\n"
        ), args
        assert not (below / ".keel").exists() and not (root / ".keel").exists(), args


def test_a_failed_command_leaves_no_empty_store(tmp_path: Path) -> None:
    # A store named on the command line is created by the command; it finds nothing, fails,
    # and takes back the empty store it made.
    out = keel("--store", ".keel", "models", "show", "iris", cwd=tmp_path)
    assert "no model named 'iris' in project 'default'" in one_line(out)
    assert not (tmp_path / ".keel").exists()
    out = keel("runs", "show", "0" * 32, cwd=tmp_path, env={"KEEL_STORE": ".keel"})
    one_line(out)
    assert not (tmp_path / ".keel").exists()


def test_a_failed_command_keeps_a_store_that_holds_records(tmp_path: Path) -> None:
    Client(store=str(tmp_path / ".keel")).get_or_create_exp("kept")
    dispose_engines()
    one_line(keel("models", "show", "iris", cwd=tmp_path))
    assert (tmp_path / ".keel" / "keel.db").exists()


def test_holds_records_tells_a_fresh_store_from_one_in_use(tmp_path: Path) -> None:
    fresh = Client(store=str(tmp_path / "fresh"))
    fresh.find_runs()  # opens (creates) the store
    used = Client(store=str(tmp_path / "used"))
    used.get_or_create_exp("x")
    dispose_engines()
    assert not holds_records(tmp_path / "fresh")
    assert holds_records(tmp_path / "used")


def test_not_found_names_the_store_the_project_and_where_the_name_is(repo: Path) -> None:
    store = repo / ".keel"
    chosen = ("--project", "default")  # a chosen project: an error, with the way out
    out = one_line(keel(*chosen, "models", "show", "iris", cwd=repo))
    assert out == (
        f"error: no model named 'iris' in project 'default' (store {store}); "
        "it is in project 'examples': keel --project examples models show iris"
    )
    out = one_line(keel(*chosen, "models", "show", "linear@1", "--json", cwd=repo))
    assert out.endswith("it is in project 'demo': keel --project demo models show linear@1 --json")
    out = one_line(keel(*chosen, "experiments", "show", "demo-grid", cwd=repo))
    assert "no experiment named 'demo-grid' in project 'default'" in out
    assert out.endswith("keel --project demo experiments show demo-grid")
    out = one_line(keel("datasets", "show", "demo-data", cwd=repo, env={"KEEL_PROJECT": "x"}))
    assert f"no dataset named 'demo-data' in project 'x' (store {store})" in out
    assert out.endswith("keel --project demo datasets show demo-data")
    out = one_line(keel("runs", "show", "0" * 32, cwd=repo))
    assert out == f"error: no run with id '{'0' * 32}' (store {store})"
    out = one_line(keel(*chosen, "models", "show", "nothing", cwd=repo))
    assert out == f"error: no model named 'nothing' in project 'default' (store {store})"


def test_a_project_nobody_chose_shows_the_one_project_holding_the_name(repo: Path) -> None:
    out = keel("models", "show", "iris", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert "versions of iris" in out.stdout
    assert "showing model 'iris' from project 'examples'" in out.stderr
    assert "pass --project to choose" in out.stderr
    out = keel("datasets", "show", "demo-data", cwd=repo)
    assert out.returncode == 0 and "dataset demo-data version 1" in out.stdout


def test_a_name_in_several_projects_is_an_error_that_lists_them(repo: Path) -> None:
    for project in ("demo", "examples"):
        Client(store=str(repo / ".keel"), project=project).create_model("shared")
    dispose_engines()
    out = one_line(keel("models", "show", "shared", cwd=repo))
    assert out.endswith(
        "it is in projects 'demo', 'examples': keel --project NAME models show shared"
    )


def test_an_empty_list_says_which_projects_hold_some(repo: Path) -> None:
    store = repo / ".keel"
    out = keel("runs", "list", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"runs in project 'default' (store {store}): none. Other projects in this store: "
        "demo (4 runs), examples (2 runs); use --project NAME"
    )
    out = keel("models", "list", cwd=repo)
    assert "demo (1 models), examples (1 models)" in out.stdout
    out = keel("datasets", "list", cwd=repo)
    assert "Other projects in this store: demo (1 dataset versions);" in out.stdout
    out = keel("--project", "demo", "runs", "list", cwd=repo)
    assert out.stdout.count("run-") == 4


def test_the_python_api_says_where_things_are(repo: Path) -> None:
    client = Client(store=str(repo / ".keel"))
    summary = {
        p.name: (p.experiments, p.runs, p.models, p.datasets) for p in client.projects_summary()
    }
    assert summary == {"demo": (1, 4, 1, 1), "examples": (1, 2, 1, 0)}
    assert client.projects_with("model", "iris") == ["examples"]
    with pytest.raises(NotInProject) as raised:
        client.get_model_version("iris@1")
    assert raised.value.elsewhere == ("examples",) and raised.value.project == "default"
    assert (
        str(raised.value)
        == "no model named 'iris' in project 'default'; it is in project 'examples'"
    )
    client.close()
