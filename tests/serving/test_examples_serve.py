"""The example projects served: iris (keel contract) and the ML2P-style predictor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    project = tmp_path / request.param
    shutil.copytree(EXAMPLES / request.param, project)
    monkeypatch.chdir(project)
    for var in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    from keel.lifecycle.training import train

    train(project / "keel.yml")
    return project


@pytest.mark.parametrize("example", ["iris"], indirect=True)
def test_iris_example_serves_its_species_resource(example: Path) -> None:
    import keel
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    row = json.loads((example / "input.json").read_text())
    with TestClient(build_app(open_service())) as client:
        answer = client.get("/iris/v1/species", params=row)
        assert answer.status_code == 200
        assert answer.json()["species"] == "versicolor"
        invoked = client.post("/invocations", json=row).json()
        assert invoked["result"]["species"] == "versicolor"
        assert client.get("/iris/v1/species", params={**row, "petal_width": 99}).status_code == 422
    records = keel.Client().find_invocations("iris@1.0.0")
    assert len(records) == 2 and records[0].result["species"] == "versicolor"


@pytest.mark.parametrize("example", ["ml2p_style"], indirect=True)
def test_ml2p_example_serves_the_container_contract(example: Path) -> None:
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    row = json.loads((example / "input.json").read_text())
    service = open_service()
    assert service.spec.batching.enabled
    with TestClient(build_app(service)) as client:
        ping = client.get("/ping")  # ML2P's wire shapes for an ML2P model
        assert ping.status_code == 200
        assert ping.json() == {"model_version": "iris-ml2p@1", "ml2p_version": "0.6.0"}
        one = client.post("/invocations", json=row).json()
        assert one["result"] == {"species": "versicolor"}
        # the ML2P predictor's metadata(), as it is
        assert one["metadata"]["model_version"] == "iris-ml2p@1"
        assert one["metadata"]["ml2p_version"] and one["metadata"]["timestamp"] > 0
        many = client.post("/invocations", json={"instances": [row, row]}).json()
        assert [p["result"] for p in many["predictions"]] == [{"species": "versicolor"}] * 2
        assert many["predictions"][0]["metadata"]["model_version"] == "iris-ml2p@1"
        assert client.post("/iris-ml2p/v1/species", json=row).json() == {"species": "versicolor"}
