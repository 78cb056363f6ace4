"""Property-based fuzzing of a served model's API from the OpenAPI document it serves.

Two models are trained into a fresh project store and served in process (``build_app``, the
app ``keel serve`` runs; its lifespan loads the model and starts the invocation recorder):

* ``iris``: ``examples/iris`` as shipped (a query resource of four bounded numbers, recording
  on);
* ``kinds``: a small model declaring one resource of each kind (query with every input type,
  an array and an enum; id with an integer id; file upload with a form field), with
  micro-batching on, so that every request path of :mod:`keel.serving.app` is fuzzed.

schemathesis generates requests for every operation of ``/openapi.json`` (examples, boundary
and type-confusion cases, Hypothesis fuzzing with valid and invalid data, ``/invocations``'
JSON forms and CSV) and every answer is held to :func:`fuzz.fuzzing.call_and_check`: no 5xx,
every refusal a 4xx JSON ``{"message": …}``, no call over ``KEEL_FUZZ_CALL_TIMEOUT_S``.

CI runs ``KEEL_FUZZ_EXAMPLES`` (default 15) fuzzing examples per operation, derandomized.
A longer run::

    KEEL_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/fuzz/test_serving_api.py
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from fuzz.fuzzing import SETTINGS, Tally, call_and_check, schemathesis_config

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}

KINDS_MODEL = '''
import keel


class Kinds(keel.Model):
    """Answers with what it was given; never fails on inputs its API accepted."""

    def train(self, ctx):
        return {"scale": 2.0}

    def predict(self, ctx, fitted, inputs):
        if "upload" in inputs:
            data = inputs["upload"].read()
            return {"bytes": len(data), "name": inputs["upload"].filename,
                    "label": inputs.get("label")}
        if "item_id" in inputs:
            return {"item": inputs["item_id"], "double": inputs["item_id"] * fitted["scale"]}
        return {"score": float(inputs.get("x") or 0) * fitted["scale"], "given": sorted(inputs)}

    def predict_batch(self, ctx, fitted, batch):
        return [self.predict(ctx, fitted, row) for row in keel_records(batch)]


def keel_records(batch):
    from keel.models.base import records

    return records(batch)
'''

KINDS_CONFIG = """\
project: fuzz
model:
  name: kinds
  version: "3.0.0"
  module: kinds_model
api:
  name: kinds
  record_invokes: true
  max_body_mb: 0.05
  batching: {enabled: true, max_batch_size: 8, max_wait_ms: 2}
  resources:
    - name: score
      kind: query
      inputs:
        x: {type: number, min: -1000, max: 1000}
        n: {type: integer, required: false, min: 0, max: 10}
        flag: {type: boolean, default: false}
        word: {type: string, required: false, max: 20}
        tags: {type: "string[]", required: false}
        weights: {type: "number[]", required: false}
        mode: {type: string, enum: [fast, exact], default: fast}
    - name: item
      kind: id
      id: {name: item_id, type: integer}
    - name: upload
      kind: file
      file: upload
      inputs:
        label: {type: string, enum: [a, b], required: false}
"""


@dataclass
class Served:
    """A trained project, the OpenAPI document of its app, and what the fuzz reached."""

    project: Path
    document: dict[str, Any]
    tally: Tally = field(default_factory=Tally)

    def app(self) -> Any:
        """A new app over a new service of the model: schemathesis ends an app's lifespan
        after each test, and a service serves one lifespan only."""
        from keel.serving.app import build_app
        from keel.serving.service import open_service

        return build_app(open_service(config=self.project / "keel.yml"))


def _train(project: Path) -> Served:
    from keel.lifecycle.training import train
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    train(project / "keel.yml")
    service = open_service(config=project / "keel.yml")
    try:
        return Served(project, build_app(service).openapi())
    finally:
        service.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Both models, trained once for the module, each into its project's own store."""
    root = tmp_path_factory.mktemp("fuzz-serving")
    iris = root / "iris"
    shutil.copytree(EXAMPLES_DIR / "iris", iris)
    kinds = root / "kinds"
    kinds.mkdir()
    (kinds / "kinds_model.py").write_text(KINDS_MODEL)
    (kinds / "keel.yml").write_text(KINDS_CONFIG)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEEL_CACHE_DIR", str(root / "cache"))
        for var in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
            env.delenv(var, raising=False)
        env.chdir(iris)
        trained = {"iris": _train(iris)}
        env.chdir(kinds)
        trained["kinds"] = _train(kinds)
    yield trained


@pytest.fixture
def iris_app(served: dict[str, Served], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(served["iris"].project)
    return served["iris"].app()


@pytest.fixture
def kinds_app(served: dict[str, Served], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(served["kinds"].project)
    return served["kinds"].app()


@pytest.fixture(scope="module")
def iris_schema(served: dict[str, Served]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(served["iris"].document, config=schemathesis_config())


@pytest.fixture(scope="module")
def kinds_schema(served: dict[str, Served]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(served["kinds"].document, config=schemathesis_config())


EMPTY_BATCHES = [
    ({"instances": []}, "application/json"),
    ([], "application/json"),
    ({"dataframe_records": []}, "application/json"),
    ({"dataframe_split": {"columns": ["sepal_length"], "data": []}}, "application/json"),
    ({"inputs": {"sepal_length": []}}, "application/json"),
    ("sepal_length,sepal_width,petal_length,petal_width\n", "text/csv"),
]


def test_regression_an_empty_batch_is_a_422_not_a_500(iris_app: Any) -> None:
    """Fuzz: POST /invocations with {"instances": []} handed iris' predict_batch an empty
    frame without columns (KeyError, 500). A batch without rows is refused before the model,
    in each of the batch forms."""
    from fastapi.testclient import TestClient

    with TestClient(iris_app) as http:
        for body, kind in EMPTY_BATCHES:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            answer = http.post("/invocations", content=data, headers={"content-type": kind})
            assert answer.status_code == 422, (body, answer.text)
            assert "no rows: send at least one input" in answer.json()["message"]


def test_regression_a_stopped_app_refuses_to_start_again(iris_app: Any) -> None:
    """Fuzz harness: schemathesis ends an app's lifespan after each test and starts it again
    on the next call. The service's model threads and recorder were gone by then, so every
    model call hung until the 30 s limit (504, then 503 for all). Starting a closed service
    now fails at startup, saying to open a new one."""
    from fastapi.testclient import TestClient

    with TestClient(iris_app) as http:
        assert http.get("/iris/v1/species", params=IRIS_ROW).status_code == 200
    with pytest.raises(RuntimeError, match="was closed"), TestClient(iris_app):
        pass


iris = schemathesis.pytest.from_fixture("iris_schema")
kinds = schemathesis.pytest.from_fixture("kinds_schema")


@iris.parametrize()
@SETTINGS
def test_iris_api_answers_every_request_without_a_server_error(
    case: schemathesis.Case, served: dict[str, Served], iris_app: Any
) -> None:
    call_and_check(case, served["iris"].tally, app=iris_app)


@kinds.parametrize()
@SETTINGS
def test_every_resource_kind_answers_every_request_without_a_server_error(
    case: schemathesis.Case, served: dict[str, Served], kinds_app: Any
) -> None:
    call_and_check(case, served["kinds"].tally, app=kinds_app)


def test_the_fuzz_reached_the_models(served: dict[str, Served]) -> None:
    """Runs after the fuzz (file order): each prediction route answered a prediction at
    least once, so the cases got past validation to the model."""
    tallies = {name: s.tally for name, s in served.items()}
    if not any(t.statuses for t in tallies.values()):
        pytest.skip("the fuzz tests did not run (deselected)")
    predicted = tallies["iris"].answered(200) | tallies["kinds"].answered(200)
    summary = "\n".join(t.summary() for t in tallies.values())
    print(summary)
    for route in (
        "GET /iris/v1/species",
        "POST /iris/v1/species",
        "POST /invocations",
        "GET /kinds/v3/score",
        "POST /kinds/v3/score",
        "GET /kinds/v3/item/{item_id}",
        "POST /kinds/v3/upload",
    ):
        assert route in predicted, summary
