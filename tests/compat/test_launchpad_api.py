"""ML Launchpad's plugins, Python API, wsgi application and CLI habits, on keel.

Projects: ``projects/launchpad_tutorial`` (docs/usage.rst's tutorial, plus a ``bogus``
plugin source and sink) and ``projects/launchpad_addition`` (the addition example), both
with their ML Launchpad-style config files unchanged.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli import keel

PROJECTS = Path(__file__).resolve().parent / "projects"
IRIS_ARGS = {"sepal.length": 5.6, "sepal.width": 2.7, "petal.length": 4.2, "petal.width": 1.3}

BOGUS_MODEL = """
from keel.compat.launchpad import ModelInterface, ModelMakerInterface, report


class BogusMaker(ModelMakerInterface):
    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        df = data_sources["blabla"].get_dataframe()
        data_sources["blabla"].get_dataframe()  # cached (expires: -1): read once
        report("bogus_rows", len(df))
        return {"total": int(df["a"].sum()), "flavour": df["flavour"][0]}

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        return {"total": model["total"]}


class BogusModel(ModelInterface):
    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        data_sinks["bogus_out"].put_raw("predicted " + str(args_dict["n"]))
        return {"total": model["total"] * args_dict["n"], "flavour": model["flavour"]}
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def tutorial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "tutorial"
    shutil.copytree(PROJECTS / "launchpad_tutorial", project)
    monkeypatch.chdir(project)  # ML Launchpad code reads relative paths from here
    yield project
    from keel.compat.launchpad.model_actions import clear_caches

    clear_caches()


@pytest.fixture
def addition(tmp_path: Path) -> Path:
    project = tmp_path / "addition"
    shutil.copytree(PROJECTS / "launchpad_addition", project)
    return project


def _bogus() -> object:
    return importlib.import_module("bogusdatasource")


# --- plugins ---------------------------------------------------------------------------------


def test_plugin_with_serves_is_a_keel_type_with_keel_caching(tutorial: Path) -> None:
    import keel.compat.launchpad as mllp
    from keel.data.catalog import DataCatalog

    conf = mllp.get_validated_config("tree_cfg.yml")
    with DataCatalog(conf.keel) as catalog:
        source = catalog.source("blabla")
        bogus = _bogus()
        before = len(bogus.READS)  # type: ignore[attr-defined]
        first = source.get_dataframe()
        second = source.get_dataframe()
        assert list(first.columns) == ["a", "b", "flavour"]
        assert first["flavour"][0] == "nonsense"  # a key of the plugin's own, from self.config
        assert second.equals(first)
        assert len(bogus.READS) == before + 1  # type: ignore[attr-defined]
        other = source.get_dataframe(params={"x": 1})
        assert other.equals(first) and len(bogus.READS) == before + 2  # type: ignore[attr-defined]
        plugin = source.plugin  # type: ignore[attr-defined]
        assert (plugin.id, plugin.expires, plugin.options) == ("blabla", -1, {})
        catalog.sink("bogus_out").put_raw("hello")
        assert (tutorial / "bogus_out.txt").read_text() == "hello"
        assert "plugin bogusdatasource.BogusDataSource" in source.target()


def test_plugin_built_directly_caches_as_launchpad_did(tutorial: Path) -> None:
    from keel.errors import ConfigError

    sys.path.insert(0, str(tutorial))
    try:
        bogus = _bogus()
        cls = bogus.BogusDataSource  # type: ignore[attr-defined]
        never = cls("x", {"type": "bogus", "expires": 0})
        assert never.get_dataframe() is not never.get_dataframe()
        forever = cls("y", {"type": "bogus", "expires": -1, "tags": "train"})
        assert forever.get_dataframe() is forever.get_dataframe()
        assert forever.tags == ["train"]
        with pytest.raises(ConfigError, match="chunksize cannot be combined with caching"):
            forever.get_dataframe(chunksize=2)
    finally:
        sys.path.remove(str(tutorial))


def test_builtin_classes_read_through_keel_types(tutorial: Path) -> None:
    from keel.compat.launchpad.datasources import FileDataSink, FileDataSource

    source = FileDataSource("petals", {"type": "csv", "path": "iris_train.csv", "expires": -1})
    frame = source.get_dataframe()
    assert "variety" in frame.columns and len(frame) == 51
    FileDataSink("out", {"type": "csv", "path": "out/copy.csv"}).put_dataframe(frame.head(2))
    assert len((tutorial / "out/copy.csv").read_text().splitlines()) == 3


# --- the Python API --------------------------------------------------------------------------


def test_python_api_trains_retests_predicts_and_lists(tutorial: Path) -> None:
    import keel.compat.launchpad as mllp

    conf = mllp.get_validated_config("tree_cfg.yml")
    assert conf["model"]["name"] == "TreeModel" and conf["datasources"]["petals"]["tags"] == "train"
    model, metrics = mllp.train_model(conf)
    assert isinstance(model, mllp.ModelInterface) and model.contents is not None
    assert metrics["accuracy"] > 0.9 and len(metrics["confusion_matrix"]) == 3
    mllp.train_model(conf)  # the same label again: version 1 becomes a backup
    assert mllp.retest(conf)["accuracy"] > 0.9
    assert mllp.predict(conf, arg_dict=IRIS_ARGS) == {"prediction": "Versicolor"}
    assert mllp.predict(conf, arg_dict=IRIS_ARGS, use_live_code=True, cache=False) == {
        "prediction": "Versicolor"
    }
    assert mllp.predict(conf, arg_dict=IRIS_ARGS, model=model) == {"prediction": "Versicolor"}
    unstored, no_metrics = mllp.train_model(conf, persist=False, test=False)
    assert no_metrics == {} and mllp.retest(conf, persist=False, model=unstored)["accuracy"] > 0.9

    listed = mllp.list_models(conf)
    tree = listed["TreeModel"]
    assert set(tree) == {"0.0.1", "latest", "backups"}
    assert tree["latest"] == tree["0.0.1"]
    assert tree["latest"]["version"] == "0.0.1" and tree["latest"]["keel_version"] == 2
    assert tree["latest"]["metrics"]["confusion_matrix"] == metrics["confusion_matrix"]
    assert [b["keel_version"] for b in tree["backups"]] == [1]
    assert {"created", "created_by", "metrics_history", "system", "config_snapshot"} <= set(
        tree["latest"]
    )
    json.dumps(listed)  # plain JSON-able, as ML Launchpad's metadata files were
    by_location = mllp.list_models(str(tutorial / "model_store"))
    assert by_location["TreeModel"]["latest"]["run_id"] == tree["latest"]["run_id"]


def test_python_api_with_a_plugin_source_in_model_code(tutorial: Path) -> None:
    import keel.compat.launchpad as mllp

    (tutorial / "bogus_model.py").write_text(BOGUS_MODEL)
    text = (tutorial / "tree_cfg.yml").read_text().replace("tree_model", "bogus_model")
    conf = mllp.get_validated_config_str(text, base_dir=tutorial)
    bogus_reads = len(_bogus().READS) if "bogusdatasource" in sys.modules else 0
    _, metrics = mllp.train_model(conf)
    assert metrics == {"total": 12}
    assert len(_bogus().READS) == bogus_reads + 1  # type: ignore[attr-defined]
    assert mllp.predict(conf, arg_dict={"n": 2}) == {"total": 24, "flavour": "nonsense"}
    assert (tutorial / "bogus_out.txt").read_text() == "predicted 2"
    listed = mllp.list_models(conf)["TreeModel"]["latest"]
    assert listed["train_report"]["bogus_rows"] == 3


def test_helpers_and_config_errors(tutorial: Path) -> None:
    import numpy as np
    import pandas as pd

    import keel.compat.launchpad as mllp
    from keel.errors import ConfigError

    frame = pd.DataFrame({"b": [1, 2], "a": [3.5, np.nan]})
    assert list(mllp.order_columns(frame).columns) == ["a", "b"]
    assert mllp.to_plain_python_obj({"x": np.int64(3), "df": frame}) == {
        "x": 3,
        "df": {"b": {"0": 1, "1": 2}, "a": {"0": 3.5, "1": None}},
    }
    with pytest.raises(ConfigError, match="model:version"):
        mllp.get_validated_config_str("model_store: {location: s}\nmodel: {name: a, module: m}\n")
    with pytest.raises(ConfigError, match="model_store:location"):
        mllp.get_validated_config_str("model: {name: a, version: '1', module: m}\n")
    assert mllp.api.get_api_base_url(mllp.get_validated_config("tree_cfg.yml")) == "/iris/v0"


# --- the wsgi module's application -----------------------------------------------------------


def test_wsgi_application_answers_a_prediction(
    addition: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    ok(keel("-c", "addition_cfg.yml", "train", cwd=addition))
    monkeypatch.setenv("LAUNCHPAD_CFG", str(addition / "addition_cfg.yml"))
    sys.modules.pop("keel.compat.launchpad.wsgi", None)
    wsgi = importlib.import_module("keel.compat.launchpad.wsgi")
    try:
        with TestClient(wsgi.application) as client:
            answer = client.get("/add/v0/sum", params={"x1": 3, "x2": 2})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"my_addition_result": 5.0}
    finally:
        sys.modules.pop("keel.compat.launchpad.wsgi", None)


# --- the keel command as ML Launchpad users type it ------------------------------------------


def test_cli_train_abbreviated_and_predict_with_args(addition: Path) -> None:
    ok(keel("-c", "addition_cfg.yml", "tr", cwd=addition))
    out = ok(keel("-c", "addition_cfg.yml", "pred", "--arg", "x1=3", "--arg", "x2=2", cwd=addition))
    assert json.loads(out) == {"my_addition_result": 5}
    stdin = '{"x1": 1, "x2": 4}'
    from_file = ok(keel("-c", "addition_cfg.yml", "predict", "-", cwd=addition, stdin=stdin))
    assert json.loads(from_file) == {"my_addition_result": 5}
    merged = keel(
        "-c", "addition_cfg.yml", "predict", "-", "--arg", "x2=2.5", cwd=addition, stdin=stdin
    )
    assert json.loads(ok(merged)) == {"my_addition_result": 3.5}
    ok(keel("-v", "-c", "addition_cfg.yml", "ret", cwd=addition))
    (addition / "log.yml").write_text(
        "version: 1\nhandlers: {f: {class: logging.FileHandler, filename: run.log}}\n"
        "root: {level: INFO, handlers: [f]}\n"
    )
    ok(keel("-l", "log.yml", "-c", "addition_cfg.yml", "retest", cwd=addition))
    assert (addition / "run.log").exists()
    python_m = [sys.executable, "-m", "keel.compat.launchpad", "-c", "addition_cfg.yml", "ret"]
    ok(subprocess.run(python_m, cwd=addition, capture_output=True, text=True, check=False))
    bad = keel("-c", "addition_cfg.yml", "predict", "--arg", "x1", cwd=addition)
    assert bad.returncode != 0 and "expected name=value" in bad.stderr


def test_cli_tutorial_generate_raml_train_and_predict(tutorial: Path) -> None:
    raml = ok(keel("--config", "tree_cfg.yml", "generate-raml", "petals", cwd=tutorial))
    assert raml.startswith("#%RAML 0.8") and "petal.width:" in raml and "variety:" in raml
    ok(keel("--config", "tree_cfg.yml", "train", cwd=tutorial))
    args = [f"--arg={k}={v}" for k, v in IRIS_ARGS.items()]
    out = ok(keel("--config", "tree_cfg.yml", "predict", *args, cwd=tutorial))
    assert json.loads(out) == {"prediction": "Versicolor"}


def test_help_lists_launchpad_commands_in_their_own_section(tmp_path: Path) -> None:
    out = ok(keel("--help", cwd=tmp_path))
    keel_part, _, launchpad_part = out.partition("ML Launchpad commands:")
    assert "generate-raml" in launchpad_part and "generate-raml" not in keel_part
    assert "train " in keel_part.split("Commands:")[1]
    assert "DATASOURCE_NAME" in ok(keel("generate-r", "--help", cwd=tmp_path))
    ambiguous = keel("gen", "--help", cwd=tmp_path)
    assert ambiguous.returncode != 0 and "generate-raml" in ambiguous.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_server(addition: Path) -> Iterator[tuple[int, Path]]:
    ok(keel("-c", "addition_cfg.yml", "train", cwd=addition))
    port = _free_port()
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "-c", "addition_cfg.yml", "api", "--port", str(port)],
        cwd=addition,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield port, addition
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_api_serves_the_model(api_server: tuple[int, Path]) -> None:
    import httpx2 as httpx

    port, _ = api_server
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/add/v0/sum?x1=3&x2=2", timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    assert answer.status_code == 200 and answer.json() == {"my_addition_result": 5.0}


OLD_MODEL_MAKER = """
from keel.compat.launchpad import ModelInterface, ModelMakerInterface


class CountingMaker(ModelMakerInterface):
    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        return {"generation": (old_model or {"generation": 0})["generation"] + 1}

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        return {"generation": model["generation"]}


class CountingModel(ModelInterface):
    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        return model
"""


def test_train_model_with_a_model_of_your_own_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train_model(conf, model=m)`` hands ``m.contents`` to create_trained_model as
    old_model instead of the stored latest version, and (persist=True) registers the result."""
    import keel.compat.launchpad as mllp

    (tmp_path / "counting.py").write_text(OLD_MODEL_MAKER)
    (tmp_path / "cfg.yml").write_text(
        "model_store: {location: ./model_store}\n"
        "model: {name: Counting, version: '1.0.0', module: counting}\n"
    )
    monkeypatch.chdir(tmp_path)
    conf = mllp.get_validated_config("cfg.yml")
    first, metrics = mllp.train_model(conf)
    assert first.contents == {"generation": 1} and metrics == {"generation": 1}
    assert mllp.train_model(conf)[0].contents == {"generation": 2}  # from the stored latest
    counting = importlib.import_module("counting")
    stored, _ = mllp.train_model(conf, model=counting.CountingModel(contents={"generation": 40}))
    assert stored.contents == {"generation": 41}
    assert mllp.list_models(conf)["Counting"]["latest"]["keel_version"] == 3
    assert mllp.predict(conf, arg_dict={}) == {"generation": 41}
