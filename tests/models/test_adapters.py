"""The seed-style adapters: ML2P defaults, mlopen's preds and save_pipeline, style detection."""

from __future__ import annotations

import types
from datetime import datetime
from pathlib import Path

import pytest

from keel.errors import ConfigError, InvalidInput, KeelError
from keel.models import launchpad, ml2p, mlopen
from keel.models.base import ModelContext, invoke_record_name
from keel.models.styles import find_model


class Predictor(ml2p.ModelPredictor):
    def result(self, data: dict) -> dict:
        return {"double": data["x"] * 2}


def _env(tmp_path: Path) -> ml2p.KeelEnv:
    ctx = ModelContext(
        "predict", {"name": "m"}, model_dir=tmp_path, work_dir=tmp_path, version="m@3", project="p"
    )
    return ml2p.KeelEnv(ml2p.SageMakerEnvType.SERVE, ctx, "mod.Model", "s3://bucket/keel/root")


def test_ml2p_predictor_defaults_have_the_documented_shapes(tmp_path: Path) -> None:
    predictor = Predictor(_env(tmp_path))
    meta = predictor.metadata()
    assert set(meta) == {"model_version", "ml2p_version", "timestamp"}
    assert meta["model_version"] == "m@3"
    assert isinstance(meta["timestamp"], float)
    assert predictor.invoke({"x": 2})["result"] == {"double": 4}
    assert set(predictor.invoke({"x": 2})) == {"metadata", "result"}
    batch = predictor.batch_invoke([{"x": 1}, {"x": 2}])  # ML2P's {"predictions": [...]}
    assert [b["result"] for b in batch["predictions"]] == [{"double": 2}, {"double": 4}]
    assert predictor.batch_result([{"x": 3}]) == [{"double": 6}]
    keys = predictor.record_invoke_id({"x": 1}, {"double": 2})
    assert list(keys) == ["ts", "uuid"]
    assert datetime.fromisoformat(keys["ts"]).utcoffset().total_seconds() == 0
    name = invoke_record_name(keys)
    assert name.startswith("ts-") and f"--uuid-{keys['uuid']}" in name


def test_ml2p_env_and_s3url(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert env.env_type == "serve" and env.project == "p" and env.model_folder() == tmp_path
    assert env.s3.bucket() == "bucket" and env.s3.path("models") == "keel/root/models"
    assert env.s3.url("models") == "s3://bucket/keel/root/models"
    local = ml2p.S3URL("/srv/keel/artifacts")
    assert local.bucket() == "" and local.url("x") == "/srv/keel/artifacts/x"


def test_mlopen_save_pipeline_only_while_training() -> None:
    with pytest.raises(KeelError, match="only available while keel trains"):
        mlopen.io_handler.save_pipeline(["model"], [], "control.py")


def test_mlopen_preds_become_json() -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    preds = mlopen.plain_preds(
        {"data": [(1, "a")], "columns": ["n", "s"], "graphs": [fig, "<div>x</div>"], "text": "ok"}
    )
    assert preds["data"] == [[1, "a"]] and preds["columns"] == ["n", "s"]
    assert (
        preds["graphs"][0]["data"][0]["type"] == "scatter" and preds["graphs"][1] == "<div>x</div>"
    )
    # mlopen's knn sets unused keys to None: absent, not a graph of None
    assert mlopen.plain_preds({"data": [], "graphs": None, "text": None}) == {"data": []}
    # keys forks add are kept and shown, not refused
    assert mlopen.plain_preds({"tables": [1]}) == {"extra": {"tables": [1]}}
    with pytest.raises(InvalidInput, match="must return the preds dict"):
        mlopen.plain_preds([1, 2])


def test_mlopen_args_are_named_pairs() -> None:
    assert mlopen._named([("vec", "tfidf_vect"), [("enc", "encoder")]]) == {
        "tfidf_vect": "vec",
        "encoder": "enc",
    }
    with pytest.raises(InvalidInput, match=r"\(object, 'name'\) pairs"):
        mlopen._named(["vec"])


def _module(name: str, **members: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in members.items():
        if isinstance(value, type):
            value.__module__ = name
        setattr(module, key, value)
    return module


def test_styles_are_detected_and_half_a_launchpad_pair_is_an_error() -> None:
    class Maker(launchpad.ModelMakerInterface):
        def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):  # type: ignore[no-untyped-def]
            return 1

        def test_trained_model(self, model_conf, data_sources, data_sinks, model):  # type: ignore[no-untyped-def]
            return {}

    class Iface(launchpad.ModelInterface):
        def predict(self, model_conf, data_sources, data_sinks, model, args_dict):  # type: ignore[no-untyped-def]
            return model

    assert find_model(_module("lp", Maker=Maker, Iface=Iface)).style == "launchpad"
    with pytest.raises(ConfigError, match="needs both a ModelMakerInterface and a ModelInterface"):
        find_model(_module("lp_half", Maker=Maker))

    class Holder(ml2p.Model):
        PREDICTOR = Predictor

    assert find_model(_module("m2", Holder=Holder)).style == "ml2p"
    control = _module("ctl", train=lambda inpt, params=None: None, run_pipeline=lambda *a: {})
    assert find_model(control).style == "mlopen"
    with pytest.raises(ConfigError, match="no model found"):
        find_model(_module("empty"))
