"""The example projects run through the keel command: train, train again, retest, predict."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from test_cli import keel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("example", "key"),
    [
        ("iris", "species"),
        ("launchpad_style", "species"),
        ("ml2p_style", "species"),
        ("mlopen_pipeline", "data"),
    ],
)
def test_example_trains_retests_and_predicts(tmp_path: Path, example: str, key: str) -> None:
    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project)
    first = json.loads(ok(keel("train", "--json", cwd=project)))
    assert first["version"] == 1 and first["metrics"]["accuracy"] > 0.8
    second = json.loads(ok(keel("train", "--json", cwd=project)))
    assert second["version"] == 2 and second["superseded"] == [1]
    if example == "iris":
        shown = ok(keel("models", "show", "iris", cwd=project))
        assert "superseded by 2" in shown and "accuracy=" in shown
    retested = json.loads(ok(keel("retest", "--version", "1", "--json", cwd=project)))
    assert retested["version"] == 1 and retested["metrics"]["accuracy"] > 0.8
    predicted = keel("predict", "input.json", cwd=project)
    assert "LibraryVersionWarning" not in predicted.stderr
    prediction = json.loads(ok(predicted))
    assert key in prediction
    if example == "mlopen_pipeline":
        assert (
            prediction["columns"][-1] == "prediction" and prediction["data"][0][-1] == "versicolor"
        )
        assert prediction["graphs"][0]["data"][0]["type"] == "scatter"
    else:
        assert prediction["species"] == "versicolor"


def test_iris_example_batch_predicts_and_generates_datasets(tmp_path: Path) -> None:
    project = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", project)
    ok(keel("train", cwd=project))
    out = ok(keel("batch-predict", "--source", "to_score", "--sink", "predictions", cwd=project))
    assert "wrote 30 predictions of iris version 1" in out
    assert len((project / "output/predictions.csv").read_text().splitlines()) == 31
    dataset = json.loads(ok(keel("generate-dataset", "--json", cwd=project)))
    assert dataset["version"] == 1
    trained = json.loads(ok(keel("train", "--dataset", "iris@1", "--json", cwd=project)))
    assert trained["version"] == 2


def test_ml2p_example_trains_on_its_generated_dataset(tmp_path: Path) -> None:
    project = tmp_path / "ml2p"
    shutil.copytree(EXAMPLES / "ml2p_style", project)
    ok(keel("generate-dataset", cwd=project))
    assert "version 1" in ok(keel("train", "--dataset", "iris-ml2p", cwd=project))


def test_cli_failures_are_one_line_with_the_run_to_look_at(tmp_path: Path) -> None:
    project = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", project)
    (project / "data/iris_train.csv").write_text("sepal_length\n1.0\n")
    failed = keel("train", cwd=project)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: train failed: KeyError:")
    assert "marked failed; traceback: keel runs show" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    bad = keel("predict", "-", cwd=project, stdin="{not json")
    assert bad.returncode == 1 and "stdin line 1 column 2: not valid JSON" in bad.stderr


def test_init_writes_each_style_that_then_trains(tmp_path: Path) -> None:
    ok(keel("init", "lp", "--style", "launchpad", cwd=tmp_path))
    assert "registered lp version 1" in ok(keel("train", cwd=tmp_path / "lp"))
    again = keel("init", "lp", "--style", "launchpad", cwd=tmp_path)
    assert again.returncode == 1 and "would overwrite" in again.stderr


def test_init_names_the_project_and_model_after_the_folder(tmp_path: Path) -> None:
    """Two projects made by `keel init` in one store never share a model, nor the example's."""
    import yaml

    store = str(tmp_path / "shared-store")
    for name in ("churn", "fraud"):
        out = ok(keel("init", name, cwd=tmp_path))
        assert f"project and model '{name}'" in out
        config = yaml.safe_load((tmp_path / name / "keel.yml").read_text())
        assert config["project"] == name and config["model"]["name"] == name
        assert config["api"]["name"] == name
        text = (tmp_path / name / "keel.yml").read_text()
        assert "/iris/" not in text and f"/{name}/v1/species" in text
        assert (tmp_path / name / "README.md").read_text().startswith(f"# {name}\n")
        trained = json.loads(ok(keel("--store", store, "train", "--json", cwd=tmp_path / name)))
        assert (trained["model"], trained["version"]) == (name, 1)
    for name in ("churn", "fraud"):
        shown = ok(keel("--store", store, "--project", name, "models", "list", cwd=tmp_path))
        assert name in shown and "iris" not in shown
    ok(keel("init", "x", "--name", "my model", "--style", "ml2p", cwd=tmp_path))
    config = yaml.safe_load((tmp_path / "x" / "keel.yml").read_text())
    assert config["project"] == "my model" and config["model"]["name"] == "my model"
    bad = keel("init", "y", "--name", "../up", cwd=tmp_path)
    assert bad.returncode == 1 and "project name" in bad.stderr and not (tmp_path / "y").exists()
