"""train / retest / predict / batch-predict / generate-dataset / load_model on a real store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import keel
from keel.artifacts.base import blob_key
from keel.errors import ConfigError, IntegrityError, NotFound
from keel.lifecycle import (
    RunFailed,
    batch_predict,
    generate_dataset,
    init_project,
    load_model,
    predict,
    retest,
    train,
)

SECRET = "s3cr3t-planted-value"  # planted in the environment by the project fixture


def test_train_registers_a_version_inside_a_tracked_run(project: Path) -> None:
    result = train("keel.yml")
    mv, run = result.version, result.run
    assert (mv.model, mv.version, mv.label) == ("ratio", 1, "1.0.0")
    assert run.kind == "train" and run.status == "finished"
    assert run.params == {"scale": 2, "nested.depth": 3}
    assert run.metrics == {"mae": 0.0, "rows": 2.0}
    assert mv.metrics == {"mae": 0.0, "rows": 2.0}
    assert run.tags["model_version"] == 1 and run.tags["style"] == "keel"
    assert run.environment["python"]
    paths = {f.path for f in run.list_artifacts()}
    assert {"config/keel.yml", "data/fingerprints.json", "train_report.json"} <= paths
    assert {"model/keel-model.json", "model/code.cloudpickle", "model/files/notes.txt"} <= paths
    report = json.loads((run.get_artifact("train_report.json")).read_text())
    assert report["train_data"]["shape"] == [4, 2] and report["had_previous"] is False
    assert report["metrics.pairs"] == [[1, 2], [3, 4]]  # a non-number metric: a report item
    prints = json.loads(run.get_artifact("data/fingerprints.json").read_text())
    from keel.hashing import hash_file

    assert prints["train"]["sha256"] == hash_file(project / "data/train.csv")
    assert set(prints) == {"train", "test"}
    config = run.get_artifact("config/keel.yml").read_text()
    assert "KEEL_TEST_SECRET" in config and SECRET not in config


def test_retraining_a_label_supersedes_and_keeps_the_old_version(project: Path) -> None:
    first = train("keel.yml").version
    second = train("keel.yml")
    assert second.version.version == 2 and second.superseded == [1]
    assert second.report["had_previous"] is True
    assert first.refresh().tags["superseded_by"] == 2
    old = load_model("ratio@1")
    assert old.fitted["generation"] == 1 and load_model("ratio@1.0.0").fitted["generation"] == 2
    assert train("keel.yml", fresh=True).report["had_previous"] is False


def test_retest_updates_metrics_and_appends_history(project: Path) -> None:
    trained = train("keel.yml")
    pd.DataFrame({"x": [1.0], "y": [3.0]}).to_csv(project / "data/test.csv", index=False)
    result = retest("keel.yml")
    assert result.run.kind == "retest" and result.metrics["mae"] == 1.0
    assert result.version.metrics["mae"] == 1.0 and result.version.version == 1
    history = keel.Client().get_metric_history(trained.run.id, "mae")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 1.0)]


def test_predict_by_label_alias_and_version_with_setup(project: Path) -> None:
    train("keel.yml")
    train("keel.yml")
    keel.Client().set_alias("ratio@1", "production")
    assert predict({"x": 3}, config="keel.yml") == {"y": 6.0, "code": "v1"}
    assert predict({"x": 1}, "@production", config="keel.yml")["y"] == 2.0
    assert predict({"x": 1}, "ratio@2")["y"] == 2.0


def test_stored_code_runs_unless_live_code_is_asked_for(project: Path) -> None:
    train("keel.yml")
    code = (project / "ratio_model.py").read_text()
    (project / "ratio_model.py").write_text(
        code.replace('CODE_VERSION = "v1"', 'CODE_VERSION = "v2"')
    )
    assert predict({"x": 1}, config="keel.yml")["code"] == "v1"
    assert predict({"x": 1}, config="keel.yml", live_code=True)["code"] == "v2"


def test_a_changed_artifact_is_refused(project: Path) -> None:
    mv = train("keel.yml").version
    client = keel.Client()
    manifest = next(f for f in client.list_model_artifact(mv) if f.path.endswith("keel-model.json"))
    blob = Path(client.settings.artifacts) / blob_key(manifest.sha256)
    blob.chmod(0o644)
    blob.write_text("{}")  # changed behind keel's back
    shutil.rmtree(client.settings.cache_dir)
    with pytest.raises(IntegrityError):
        load_model("ratio@1")


def test_a_failing_training_marks_the_run_and_saves_the_traceback(project: Path) -> None:
    text = (project / "keel.yml").read_text().replace("scale: 2", 'scale: 2, fail: "no rows"')
    (project / "keel.yml").write_text(text)
    with pytest.raises(
        RunFailed,
        match=r"train failed: ValueError: training data is bad: no rows \(run \w+ marked failed; traceback: keel runs show \w+",
    ) as caught:
        train("keel.yml")
    run = keel.Client().get_run(caught.value.run_id)
    assert run.status == "failed" and "ValueError" in (run.failure or "")
    assert "training data is bad" in run.get_artifact("failure/traceback.txt").read_text()
    with pytest.raises(NotFound):
        keel.Client().get_model_version("ratio@latest")


def test_batch_predict_streams_chunks_into_the_sink(project: Path) -> None:
    train("keel.yml")
    seen: list[int] = []
    result = batch_predict("score", "scored", config="keel.yml", chunksize=10, progress=seen.append)
    assert result.rows == 25 and seen == [10, 20, 25]
    out = pd.read_csv(project / "out/scored.csv")
    assert out.columns.tolist() == ["x", "y", "code"] and len(out) == 25
    assert out["y"].tolist() == [2.0 * x for x in range(25)]
    assert result.run.kind == "batch-predict" and result.run.metrics["rows"] == 25


def test_generated_dataset_feeds_a_training(project: Path) -> None:
    ds = generate_dataset("keel.yml")
    assert (ds.name, ds.version) == ("ratio", 1)
    assert generate_dataset("keel.yml").version == 1  # same content: same version
    trained = train("keel.yml", dataset="ratio@1")
    assert trained.run.tags["dataset"] == "ratio@1"
    lineage = keel.Client().get_dataset("ratio").runs
    assert trained.run.id in [run_id for run_id, _role in lineage]


def test_missing_module_setting_is_a_clear_config_error(project: Path) -> None:
    (project / "keel.yml").write_text("model: {name: ratio}\n")
    with pytest.raises(ConfigError, match=r"model\.module is not set"):
        train("keel.yml")


def test_init_writes_a_project_and_never_overwrites(tmp_path: Path) -> None:
    written = init_project(tmp_path / "new", "keel")
    assert (tmp_path / "new" / "keel.yml") in written
    with pytest.raises(keel.errors.Conflict, match="would overwrite"):
        init_project(tmp_path / "new", "keel")
