"""The api: section: input types and constraints, config errors, `keel api schema`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError
from tests.test_cli import keel

from keel.data.helpers import to_plain_python
from keel.serving.schema import api_block, inputs_from_frame
from keel.serving.service import major_of
from keel.serving.spec import ApiSpec


def _model(inputs: dict):
    return (
        ApiSpec.model_validate({"resources": [{"name": "r", "inputs": inputs}]})
        .resources[0]
        .input_model
    )


def test_types_defaults_and_constraints() -> None:
    model = _model(
        {
            "n": {"type": "integer", "min": 1, "max": 3},
            "xs": "number[]",
            "tags": {"type": "array", "items": "string", "max": 2, "default": []},
            "mode": {"type": "string", "enum": ["a", "b"], "required": False},
            "flag": {"type": "boolean", "default": False},
        }
    )
    ok = model.model_validate({"n": "2", "xs": [1, 2.5]}).model_dump()
    assert ok == {"n": 2, "xs": [1.0, 2.5], "tags": [], "mode": None, "flag": False}
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"n": 9, "xs": ["a"], "tags": ["1", "2", "3"], "mode": "c"})
    assert {e["loc"][0] for e in caught.value.errors()} == {"n", "xs", "tags", "mode"}


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"x": {"type": "decimal"}}, "unknown input type 'decimal'"),
        ({"x": {"type": "array"}}, "needs items"),
        ({"x": {"type": "number", "items": "string"}}, "arrays only"),
        ({"x": {"type": "number", "colour": 1}}, "Extra inputs"),
    ],
)
def test_bad_input_declarations(inputs: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _model(inputs)


def test_resources_default_and_unique() -> None:
    assert [r.name for r in ApiSpec().resources] == ["predict"]
    with pytest.raises(ValidationError, match="declared twice"):
        ApiSpec.model_validate({"resources": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValidationError, match="id resources only"):
        ApiSpec.model_validate({"resources": [{"name": "a", "id": {"name": "k"}}]})
    assert ApiSpec.model_validate({"batching": True}).batching.enabled


def test_major_of_label() -> None:
    assert [major_of(x) for x in ("1.2.0", "v3.1", "10", None, "beta")] == [
        "1",
        "3",
        "10",
        "0",
        "0",
    ]


def test_inputs_from_a_frame() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5, 3.5],
            "n": [1, None, 3],
            "kind": ["a", "b", "a"],
            "ok": [True, False, True],
            "target": [0, 1, 0],
        }
    )
    inputs = inputs_from_frame(frame, exclude=["target"])
    assert inputs == {
        "x": {"type": "number", "example": 1.5},
        "n": {"type": "integer", "required": False, "example": 1},
        "kind": {"type": "string", "enum": ["a", "b"], "example": "a"},
        "ok": {"type": "boolean", "example": True},
    }
    block = yaml.safe_load(api_block("things", "score", inputs))["api"]
    assert block["resources"][0]["inputs"] == inputs
    # and keel reads it back
    assert ApiSpec.model_validate(block).resources[0].input_model is not None


def test_numpy_float_becomes_plain_float() -> None:
    value = to_plain_python(np.float64(5.1))
    assert type(value) is float and value == 5.1


def test_api_schema_cli(trained: Path) -> None:
    out = keel("api", "schema", "--from-source", "rows", "--resource", "things", cwd=trained)
    assert out.returncode == 0, out.stderr
    block = yaml.safe_load(out.stdout)["api"]
    assert block["name"] == "scorer"
    assert block["resources"][0]["inputs"]["kind"]["type"] == "string"
    written = keel(
        "api",
        "schema",
        "--from-source",
        "rows",
        "--resource",
        "things",
        "-o",
        "api.yml",
        cwd=trained,
    )
    assert written.returncode == 0 and (trained / "api.yml").read_text() == out.stdout
    bad = keel("api", "schema", "--from-source", "nope", cwd=trained)
    assert bad.returncode == 1 and "no data source named 'nope'" in bad.stderr
