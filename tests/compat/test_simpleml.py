"""SimpleML code on keel: the README's Usage section (dataset → pipeline → model → metric) run
unchanged but for its imports on titanic-style data, reloaded by name and version in a new
process, seen through the CLI and the REST API, loaded by ``keel.load_model`` and served by
``keel serve``; and the persistable contract (save patterns with fallback, the registries,
saving twice, the creators)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pytest
from tests.serving.test_server import _free_port, _stop, _wait_ready
from tests.test_cli import keel

PROJECT = Path(__file__).parent / "projects" / "simpleml_titanic"
PASSENGER = {"PassengerId": 900, "Pclass": 1, "Sex": "female", "Age": 29, "SibSp": 0,
             "Parch": 0, "Fare": 80.0, "Embarked": "S"}  # fmt: skip


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_STORE"] = str(project / ".keel")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _python(code_or_file: str, project: Path, *args: str) -> str:
    command = (
        [sys.executable, code_or_file]
        if code_or_file.endswith(".py")
        else [sys.executable, "-c", code_or_file]
    )
    out = subprocess.run(
        [*command, *args],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _copy(tmp: Path) -> Path:
    project = tmp / "titanic"
    shutil.copytree(PROJECT, project)
    return project


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    project = _copy(tmp_path_factory.mktemp("simpleml"))
    saved = json.loads(_python("titanic_train.py", project).strip().splitlines()[-1])
    return project, saved


def test_the_readme_flow_saves_each_kind_as_version_1(trained: tuple[Path, dict[str, Any]]) -> None:
    _, saved = trained
    for kind in ("dataset", "pipeline", "model", "metric"):
        assert saved[kind][1] == 1, kind
    name, values = saved["metric"][2], saved["metric"][3]
    assert name == "classification_accuracy"
    assert 0.5 < values["agg"] <= 1.0  # 20 test rows of a learnable rule


RELOAD = """
import json, sys
import pandas as pd
from keel.compat.simpleml.utils import PersistableLoader

dataset = PersistableLoader.load_dataset(name="titanic", version=1)
pipeline = PersistableLoader.load_pipeline(name="titanic", version=1)
model = PersistableLoader.load_model(name="titanic", version=1)
metric = PersistableLoader.load_metric(name="classification_accuracy", model_id=model.id)
new = pd.DataFrame([json.loads(sys.argv[1])])
print(json.dumps({
    "ids": {k: str(p.id) for k, p in
            dict(dataset=dataset, pipeline=pipeline, model=model, metric=metric).items()},
    "hashes": {k: p.hash_ for k, p in dict(dataset=dataset, pipeline=pipeline, model=model).items()},
    "rows": len(dataset.dataframe),
    "labels": dataset.label_columns,
    "splits": pipeline.get_split_names(),
    "model_pipeline": str(model.pipeline.id),
    "pipeline_dataset": str(pipeline.dataset.id),
    "proba": model.predict_proba(new, transform=True).tolist(),
    "explicit": model.predict_proba(pipeline.transform(new), transform=False).tolist(),
    "metric": metric.values,
    "library_versions": sorted(model.library_versions),
}))
"""


def test_each_persistable_reloads_by_name_and_version_in_a_new_process(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    project, saved = trained
    got = json.loads(_python(RELOAD, project, json.dumps(PASSENGER)))
    assert got["ids"] == {k: saved[k][0] for k in ("dataset", "pipeline", "model", "metric")}
    assert got["hashes"] == {k: saved[k][2] for k in ("dataset", "pipeline", "model")}
    assert got["rows"] == 100 and got["labels"] == ["Survived"]
    assert got["splits"] == ["TRAIN", "VALIDATION", "TEST"]
    assert got["model_pipeline"] == saved["pipeline"][0]
    assert got["pipeline_dataset"] == saved["dataset"][0]
    assert got["proba"] == got["explicit"] and len(got["proba"][0]) == 2
    assert got["metric"] == saved["metric"][3]
    assert {"python", "pandas", "scikit-learn"} <= set(got["library_versions"])


def test_keel_load_model_predicts_with_the_pipeline_applied(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    project, _ = trained
    code = (
        "import json, sys, keel\n"
        "import pandas as pd\n"
        "from keel.compat.simpleml.utils import PersistableLoader\n"
        "row = json.loads(sys.argv[1])\n"
        "loaded = keel.load_model('titanic@latest')\n"
        "model = PersistableLoader.load_model(name='titanic', version=1)\n"
        "print(json.dumps({'keel': loaded.predict(row), 'style': loaded.style,\n"
        "  'batch': loaded.predict_batch([row, {'Sex': 'male', 'Pclass': 3}]),\n"
        "  'simpleml': model.predict_proba(pd.DataFrame([row])).tolist()}))\n"
    )
    got = json.loads(_python(code, project, json.dumps(PASSENGER)))
    assert got["style"] == "simpleml"
    assert got["keel"]["prediction"] in (0, 1)
    assert list(got["keel"]["probabilities"].values()) == pytest.approx(got["simpleml"][0])
    assert got["batch"][0] == got["keel"] and len(got["batch"]) == 2


def test_the_cli_shows_the_lineage(trained: tuple[Path, dict[str, Any]]) -> None:
    project, saved = trained
    env = _env(project)
    shown = keel("models", "show", "titanic@1", "--json", cwd=project, env=env)
    assert shown.returncode == 0, shown.stderr
    version = json.loads(shown.stdout)
    assert version["tags"]["simpleml.pipeline"] == "titanic@1 (RandomSplitSklearnPipeline)"
    assert version["tags"]["simpleml.dataset"] == "titanic@1 (PandasFileBasedDataset)"
    assert version["tags"]["simpleml.id"] == saved["model"][0]
    assert version["metrics"]["classification_accuracy"] == saved["metric"][3]["agg"]
    table = keel("models", "show", "titanic@1", cwd=project, env=env).stdout
    assert "titanic@1 (RandomSplitSklearnPipeline)" in table

    dataset = json.loads(keel("datasets", "show", "titanic", "--json", cwd=project, env=env).stdout)
    roles = {r["run_id"]: r["role"] for r in dataset["runs"]}
    assert roles[dataset["dataset"]["run_id"]] == "output"
    assert roles[version["run_id"]] == "input"  # the model's run read the dataset
    assert sorted(roles.values()) == ["input", "input", "output"]  # pipeline and model

    run = json.loads(keel("runs", "show", version["run_id"], "--json", cwd=project, env=env).stdout)
    assert run["run"]["kind"] == "train" and run["run"]["status"] == "finished"
    assert run["run"]["tags"]["simpleml.pipeline_id"] == saved["pipeline"][0]
    assert run["run"]["params"]["registered_name"] == "SklearnLogisticRegression"
    paths = {f["path"] for f in run["artifacts"]}
    assert "simpleml-record.json" in paths and "keel-model/keel-model.json" in paths


def test_the_rest_api_shows_the_lineage(trained: tuple[Path, dict[str, Any]]) -> None:
    from tests.keel_server import running_server

    from keel.server.settings import ServerSettings

    project, saved = trained
    settings = ServerSettings(store=str(project / ".keel"))
    with running_server(settings) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        api = f"{server.url}/api/v1"
        mv = httpx2.get(
            f"{api}/model-versions/titanic/1", params={"project": "default"}, headers=auth
        )
        assert mv.status_code == 200, mv.text
        assert mv.json()["tags"]["simpleml.dataset_id"] == saved["dataset"][0]
        assert mv.json()["metrics"]["classification_accuracy"] == saved["metric"][3]["agg"]
        ds = httpx2.get(
            f"{api}/dataset-versions/titanic/1", params={"project": "default"}, headers=auth
        ).json()
        runs = httpx2.get(f"{api}/datasets/{ds['id']}/runs", headers=auth).json()
        assert mv.json()["run_id"] in json.dumps(runs)

        # and the web UI shows the version like any other: its metric and lineage tags
        with httpx2.Client(base_url=server.url) as ui:
            login = ui.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
            assert csrf is not None
            answer = ui.post(
                "/login",
                data={"name": "admin", "password": "test-password", "csrf_token": csrf.group(1)},
            )
            assert answer.status_code in (200, 303), answer.text
            page = ui.get("/projects/default/models/titanic/v/1")
            assert page.status_code == 200, page.text
            assert "classification_accuracy" in page.text
            assert saved["dataset"][0] in page.text


def test_keel_serve_predicts(trained: tuple[Path, dict[str, Any]]) -> None:
    project, _ = trained
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve", "titanic@1", "--port", str(port)],
        cwd=project, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        answer = httpx2.post(f"{url}/invocations", json=PASSENGER, timeout=30)
        assert answer.status_code == 200, answer.text
        result = answer.json()["result"]
        assert result["prediction"] in (0, 1)
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    finally:
        _stop(proc)


def test_saving_twice_returns_the_saved_versions_unless_duplication_is_asked(
    tmp_path: Path,
) -> None:
    project = _copy(tmp_path)
    first = json.loads(_python("titanic_train.py", project).strip().splitlines()[-1])
    again = json.loads(_python("titanic_train.py", project).strip().splitlines()[-1])
    assert again == first  # identical content: the same ids and versions
    script = (project / "titanic_train.py").read_text()
    duplicating = script.replace("Database()", "Database(allow_duplication=True)")
    (project / "duplicate.py").write_text(duplicating)
    third = json.loads(_python("duplicate.py", project).strip().splitlines()[-1])
    for kind in ("dataset", "pipeline", "model"):
        assert third[kind][1] == 2, kind  # SimpleML's behaviour: a new version each time
    assert third["metric"][1] == 1  # metric versions count per name and model: a new model
    assert all(third[k][0] != first[k][0] for k in first)
    assert third["model"][2] == first["model"][2]  # same content, same hash
    listed = json.loads(
        keel("models", "show", "titanic", "--json", cwd=project, env=_env(project)).stdout
    )
    assert [v["version"] for v in listed["versions"]] == [2, 1]


# --- the persistable contract, in process --------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Path]:
    """Persistables saved in a keel store on SQLite and on PostgreSQL."""
    from keel.compat.simpleml import records
    from keel.compat.simpleml.utils import Database

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("KEEL_")]:
        monkeypatch.delenv(key)
    Database(uri=store_url, artifacts=str(tmp_path / "artifacts")).initialize(upgrade=True)
    yield tmp_path
    records.session().client.close()
    records._session = None


def _frame() -> pd.DataFrame:
    return pd.read_csv(PROJECT / "titanic.csv")


def test_a_custom_save_pattern_is_used_by_name_and_load_falls_back_in_order(store: Path) -> None:
    from keel.compat.simpleml.datasets.pandas import PandasDataFrameDataset
    from keel.compat.simpleml.save_patterns import SavePatternDecorators
    from keel.compat.simpleml.utils import PersistableLoader, SimpleMLError

    calls: list[str] = []

    @SavePatternDecorators.register_save_pattern("broken_on_load", overwrite=True)
    class Broken:
        @classmethod
        def save(cls, obj: Any, folder: Path, filepath: str, **_: Any) -> dict[str, Any]:
            calls.append("save")
            (Path(folder) / f"{filepath}.csv").write_text(obj.to_csv(index=False))
            return {"filepath": f"{filepath}.csv"}

        @classmethod
        def load(cls, folder: Path, filepath: str, **_: Any) -> Any:
            calls.append("load")
            raise OSError("the bucket is gone")

    dataset = PandasDataFrameDataset(
        name="people", dataframe=_frame(), label_columns=["Survived"],
        save_patterns={"dataset": ["broken_on_load", "joblib"]},
    )  # fmt: skip
    dataset.save()
    assert set(dataset.filepaths["dataset"]) == {"broken_on_load", "joblib"}
    loaded = PersistableLoader.load_dataset(name="people")
    assert loaded.unloaded_artifacts == ["dataset"]
    assert loaded.dataframe.equals(_frame())  # broken_on_load failed, joblib worked
    assert calls == ["save", "load"] and loaded.unloaded_artifacts == []

    loaded.filepaths["dataset"] = {"broken_on_load": loaded.filepaths["dataset"]["broken_on_load"],
                                   "nowhere": {"filepath": "x"}}  # fmt: skip
    with pytest.raises(SimpleMLError) as failed:
        loaded.load_external_files()
    message = str(failed.value)
    assert "broken_on_load: OSError: the bucket is gone" in message
    assert "nowhere: SimpleMLError: no load pattern 'nowhere' is registered" in message


def test_database_table_saves_a_frame_in_the_store(store: Path) -> None:
    from keel.compat.simpleml.datasets.pandas import PandasDataFrameDataset
    from keel.compat.simpleml.utils import PersistableLoader

    dataset = PandasDataFrameDataset(
        name="tabled", dataframe=_frame(), save_patterns={"dataset": ["database_table"]}
    )
    dataset.save()
    table = dataset.filepaths["dataset"]["database_table"]["table"]
    assert table.startswith("dataset_")
    loaded = PersistableLoader.load_dataset(name="tabled", version=1)
    pd.testing.assert_frame_equal(loaded.dataframe, _frame())


def test_registries_and_the_artifact_decorator(store: Path) -> None:
    from keel.compat.simpleml.datasets.pandas import PandasDataFrameDataset
    from keel.compat.simpleml.persistables.base_persistable import Persistable
    from keel.compat.simpleml.registries import SAVE_METHOD_REGISTRY, SIMPLEML_REGISTRY
    from keel.compat.simpleml.save_patterns import ExternalArtifactDecorators

    @ExternalArtifactDecorators.register_artifact(
        artifact_name="notes", save_attribute="notes", restore_attribute="notes"
    )
    class Notes(Persistable):
        def _hash(self) -> str:
            return self.custom_hasher(self.notes)

    assert SIMPLEML_REGISTRY.get("Notes") is Notes
    assert SIMPLEML_REGISTRY.get("PandasDataFrameDataset") is PandasDataFrameDataset
    assert {
        "disk_pickled",
        "cloud_pickled",
        "pickle",
        "cloudpickle",
        "joblib",
        "database_table",
    } <= set(SAVE_METHOD_REGISTRY.registry)
    notes = Notes(name="notes", has_external_files=True, save_patterns={"notes": ["pickle"]})
    notes.notes = {"a": [1, 2]}
    notes.save()
    again = Notes(name="notes", has_external_files=True, save_patterns={"notes": ["pickle"]})
    again.notes = {"a": [1, 2]}
    again.save()
    assert (again.id, again.version) == (notes.id, 1)  # keel's rule: identical content
    again2 = Notes(name="notes", has_external_files=True, save_patterns={"notes": ["pickle"]})
    again2.notes = {"a": [1, 2]}
    again2.save(allow_duplication=True)
    assert again2.version == 2 and again2.id != notes.id
    from keel.compat.simpleml import records

    loaded = records.load("PERSISTABLE", {"name": "notes", "version": 1}, load_externals=True)
    assert loaded.notes == {"a": [1, 2]} and loaded.id == notes.id


def test_hashes_are_keel_hashes_and_stable(store: Path) -> None:
    from keel.compat.simpleml.datasets.pandas import PandasDataFrameDataset
    from keel.hashing import hash_value

    one = PandasDataFrameDataset(name="h", dataframe=_frame(), label_columns=["Survived"])
    two = PandasDataFrameDataset(name="h", dataframe=_frame(), label_columns=["Survived"])
    other = PandasDataFrameDataset(name="h", dataframe=_frame(), label_columns=["Sex"])
    assert one._hash() == two._hash() != other._hash()
    assert one._hash() == hash_value([_frame(), one.config, None])


def test_creators_retrieve_or_create(store: Path) -> None:
    from keel.compat.simpleml.constants import TEST_SPLIT
    from keel.compat.simpleml.transformers import (
        DataframeToRecords,
        FillWithValue,
        SklearnDictVectorizer,
    )
    from keel.compat.simpleml.utils import (
        DatasetCreator,
        MetricCreator,
        ModelCreator,
        PipelineCreator,
    )

    csv = str(PROJECT / "titanic.csv")
    dataset_kwargs = {"name": "titanic", "registered_name": "PandasFileBasedDataset", "filepath": csv,
                      "format": "csv", "label_columns": ["Survived"], "squeeze_return": True}  # fmt: skip
    pipeline_kwargs = {
        "name": "titanic", "registered_name": "RandomSplitSklearnPipeline",
        "transformers": [("fill", FillWithValue(values=0.0)), ("records", DataframeToRecords()),
                         ("vectorizer", SklearnDictVectorizer())],
        "train_size": 0.8, "validation_size": 0.0, "test_size": 0.2,
    }  # fmt: skip
    model_kwargs = {"name": "titanic", "registered_name": "SklearnLogisticRegression",
                    "external_model_kwargs": {"max_iter": 1000}}  # fmt: skip
    metric_kwargs = {"registered_name": "RocAucMetric", "dataset_split": TEST_SPLIT}

    dataset = DatasetCreator.retrieve_or_create(**dataset_kwargs)
    pipeline = PipelineCreator.retrieve_or_create(dataset=dataset, **pipeline_kwargs)
    model = ModelCreator.retrieve_or_create(pipeline=pipeline, **model_kwargs)
    metric = MetricCreator.retrieve_or_create(model=model, dataset=dataset, **metric_kwargs)
    assert metric.name == "roc_auc" and 0.5 < metric.values["agg"] <= 1.0

    # option 2: nested references; everything exists, so nothing new is made. (The README
    # passes model_kwargs= beside **metric_kwargs that already hold it: a TypeError in any
    # Python, so each is passed once here.)
    pipeline_kwargs["dataset_kwargs"] = dataset_kwargs
    model_kwargs["pipeline_kwargs"] = pipeline_kwargs
    metric_kwargs["model_kwargs"] = model_kwargs
    again = MetricCreator.retrieve_or_create(dataset_kwargs=dataset_kwargs, **metric_kwargs)
    assert again.id == metric.id
    found = ModelCreator.retrieve_or_create(**model_kwargs)
    assert (found.id, found.version) == (model.id, 1)


def test_classification_metrics(store: Path) -> None:
    import numpy as np

    from keel.compat.simpleml import metrics
    from keel.compat.simpleml.metrics import AccuracyMetric, F1ScoreMetric, FprTprMetric

    assert len(metrics.CURVE_METRICS) == 11 * 15 and metrics.ThresholdAccuracyMetric().name == (
        "threshold_accuracy_curve"
    )
    labels, predicted = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert AccuracyMetric._score(predicted, labels) == 0.75
    assert F1ScoreMetric._score(predicted, labels) == pytest.approx(2 / 3)
    assert FprTprMetric().name == "fpr_tpr_curve" and FprTprMetric.maximize is True
    matrix = FprTprMetric._create_confusion_matrix([0.5], np.array([0.2, 0.9, 0.4, 0.1]), labels)
    assert matrix[["tn", "fp", "fn", "tp"]].values.tolist() == [[2, 0, 1, 1]]


def test_unknown_lookups_and_unsaved_loads_are_one_line_errors(store: Path) -> None:
    from keel.compat.simpleml.utils import Database, PersistableLoader, SimpleMLError

    with pytest.raises(SimpleMLError, match="no saved model matches name=nope"):
        PersistableLoader.load_model(name="nope")
    with pytest.raises(SimpleMLError, match="cannot look models up by colour"):
        PersistableLoader.load_model(colour="red")
    with pytest.raises(SimpleMLError, match="keel reads its store from KEEL_STORE"):
        Database(configuration_section="simpleml-database")
    with pytest.raises(SimpleMLError, match="use_ssh_tunnel is not supported"):
        Database(use_ssh_tunnel=True)
