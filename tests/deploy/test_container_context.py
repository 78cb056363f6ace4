"""What ``keel container build`` puts in an image, decided without building one: the libraries
a version needs, the project's files, the platform tags pip is given, and its bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.monitoring.helpers import trained_iris

import keel
from keel.deploy.container import (
    copy_project,
    drop_test_suites,
    library_requirements,
    needed_libraries,
    platform_tags,
    requirements_for,
    write_context,
)
from keel.deploy.imports import project_imports
from keel.errors import InvalidInput


def test_a_version_needs_the_libraries_its_pickles_name_not_all_its_training_imported(
    tmp_path: Path,
) -> None:
    _project, client, version = trained_iris(tmp_path)
    folder = client.get_model_artifact(version)
    manifest = keel.lifecycle.artifact.Manifest.read(folder)
    # training imported many more (this test process's), and recorded them
    assert {"pytest", "sklearn", "numpy"} <= set(manifest.libraries)
    needed = needed_libraries(manifest.libraries, folder=folder)
    assert {"sklearn", "numpy", "cloudpickle", "pandas"} <= set(needed)
    assert not {"pytest", "dask", "mlflow", "plotly", "pyarrow"} & set(needed)
    assert needed["sklearn"] == manifest.libraries["sklearn"]  # at the recorded version
    pins = requirements_for(needed)
    assert pins["scikit-learn"] == manifest.libraries["sklearn"]  # module → distribution
    assert "fastapi" in pins and "uvicorn" in pins  # keel's serving core
    assert not {"plotly", "Jinja2", "nh3", "argon2-cffi", "dask", "mlflow"} & set(pins)
    client.close()


def test_a_recorded_version_wins_over_the_installed_one_only_for_its_own_release() -> None:
    import sklearn

    assert library_requirements({"sklearn": sklearn.__version__}) == {
        "scikit-learn": sklearn.__version__
    }
    # a module recorded without a version, or one this machine lacks, takes what is here
    assert library_requirements({"sklearn": None}) == {"scikit-learn": sklearn.__version__}
    assert library_requirements({"no_such_module_here": "1.0"}) == {}


def test_a_project_needs_what_its_code_imports(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "import json, os\nfrom . import helpers\nimport helpers\n"
    )
    (tmp_path / "helpers.py").write_text("import pandas\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.py").write_text("import torch\n")  # not the project's code
    assert project_imports(tmp_path) == ["numpy", "pandas", "sklearn"]


def test_the_project_copy_leaves_out_the_store_caches_and_ignored_files(tmp_path: Path) -> None:
    project = tmp_path / "p"
    for name in [
        "keel.yml",
        "model.py",
        "data/train.csv",
        ".keel/keel.db",
        ".git/HEAD",
        "__pycache__/model.cpython-311.pyc",
        ".venv/bin/python",
        "secrets/key.pem",
        "notes.tmp",
    ]:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x")
    (project / ".containerignore").write_text("# ours\nsecrets/\n*.tmp\n")
    copied = copy_project(project, tmp_path / "out")
    found = sorted(
        p.relative_to(tmp_path / "out").as_posix()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    )
    assert found == [".containerignore", "data/train.csv", "keel.yml", "model.py"]
    assert copied == 4


def test_pip_gets_every_older_glibc_tag() -> None:
    tags = platform_tags("manylinux_2_36_x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert platform_tags("macosx_11_0_arm64") == ["macosx_11_0_arm64"]


def test_library_test_suites_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "lib/tests").mkdir(parents=True)
    (tmp_path / "lib/__init__.py").write_text("")
    (tmp_path / "lib/tests/test_big.py").write_text("x" * 1000)
    (tmp_path / "tests").mkdir()  # not inside a package: left alone
    (tmp_path / "tests/keep.py").write_text("x")
    assert drop_test_suites(tmp_path) == 1000
    assert not (tmp_path / "lib/tests").exists() and (tmp_path / "tests/keep.py").exists()


def test_a_context_is_written_into_a_new_folder_only(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "old").write_text("x")
    with pytest.raises(InvalidInput, match="is not empty"):
        write_context(tmp_path / "ctx", project_dir=None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["iris@9"], "iris"),  # no such version: the store says which
        (["iris@1", "--python", "three"], "is not a Python version like 3.11"),
        (["iris@1", "--builder", "kaniko"], "Invalid value for '--builder'"),
    ],
)
def test_container_build_refuses_bad_input_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    project, client, _version = trained_iris(tmp_path)
    client.close()
    done = subprocess.run(
        [sys.executable, "-m", "keel.cli", "container", "build", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(project.glob("keel-container-*"))  # nothing left behind
    shutil.rmtree(project)
