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

    KEEL_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/fuzz/test_serving_api.py
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from fuzz.fuzzing import SETTINGS, Tally, call_and_check, schemathesis_config

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

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


def _serve(project: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Train the project's model into its own store and build the app that serves it."""
    from keel.lifecycle.training import train
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    monkeypatch.chdir(project)
    train(project / "keel.yml")
    return build_app(open_service(config=project / "keel.yml"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both apps (trained once for the module); their lifespans end with the module."""
    from schemathesis.python.asgi import shutdown_lifespans

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
        apps = {"iris": _serve(iris, env), "kinds": _serve(kinds, env)}
        try:
            yield {"apps": apps, "tally": {name: Tally() for name in apps}}
        finally:
            shutdown_lifespans()  # stops each model and flushes its invocation recorder


@pytest.fixture(scope="module")
def iris_schema(served: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi(
        "/openapi.json", served["apps"]["iris"], config=schemathesis_config()
    )


@pytest.fixture(scope="module")
def kinds_schema(served: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi(
        "/openapi.json", served["apps"]["kinds"], config=schemathesis_config()
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"instances": []}, "application/json"),
        ([], "application/json"),
        ({"dataframe_records": []}, "application/json"),
        ({"dataframe_split": {"columns": ["sepal_length"], "data": []}}, "application/json"),
        ({"inputs": {"sepal_length": []}}, "application/json"),
        ("sepal_length,sepal_width,petal_length,petal_width\n", "text/csv"),
    ],
)
def test_regression_an_empty_batch_is_a_422_not_a_500(
    served: dict[str, Any], body: Any, kind: str
) -> None:
    """Fuzz: POST /invocations with {"instances": []} handed iris' predict_batch an empty
    frame without columns (KeyError, 500). A batch without rows is refused before the model."""
    from schemathesis.python.asgi import get_client

    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    with get_client(served["apps"]["iris"]) as http:  # the app's running lifespan, not a new one
        answer = http.post("/invocations", data=data, headers={"content-type": kind})
    assert answer.status_code == 422, answer.text
    assert "no rows: send at least one input" in answer.json()["message"]


iris = schemathesis.pytest.from_fixture("iris_schema")
kinds = schemathesis.pytest.from_fixture("kinds_schema")


@iris.parametrize()
@SETTINGS
def test_iris_api_answers_every_request_without_a_server_error(
    case: schemathesis.Case, served: dict[str, Any]
) -> None:
    call_and_check(case, served["tally"]["iris"])


@kinds.parametrize()
@SETTINGS
def test_every_resource_kind_answers_every_request_without_a_server_error(
    case: schemathesis.Case, served: dict[str, Any]
) -> None:
    call_and_check(case, served["tally"]["kinds"])


def test_the_fuzz_reached_the_models(served: dict[str, Any]) -> None:
    """Runs after the fuzz (file order): each prediction route answered a prediction at
    least once, so the cases got past validation to the model."""
    tallies: dict[str, Tally] = served["tally"]
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
