"""The rule of the model contract: ``predict_batch`` gives each row what ``predict`` gives,
checked on every example project, through the Python API and through ``/invocations``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from test_cli import keel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = sorted(
    p.name for p in EXAMPLES.iterdir() if p.is_dir() and (p / "keel.yml").is_file()
)


def _rows(project: Path) -> list[dict[str, Any]]:
    payload = json.loads((project / "input.json").read_text())
    return payload if isinstance(payload, list) else [payload]


def test_every_example_is_checked() -> None:
    assert {"iris", "launchpad_style", "ml2p_style", "mlopen_pipeline"} <= set(EXAMPLE_NAMES)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_predict_batch_gives_what_predict_gives(
    tmp_path: Path, example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import keel as keel_api

    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project, ignore=shutil.ignore_patterns(".keel", "output"))
    trained = keel("train", "--json", cwd=project)
    assert trained.returncode == 0, trained.stderr
    monkeypatch.chdir(project)
    rows = _rows(project)
    # a second row, so a batch of two is checked too
    rows = [*rows, dict(rows[0])]
    with keel_api.load_model(config=project / "keel.yml") as model:
        singles = [model.predict(row) for row in rows]
        as_list = model.predict_batch(rows)
        as_frame = model.predict_batch(pd.DataFrame(rows))
    assert _plain(as_list) == _plain(singles)
    assert _plain(as_frame) == _plain(singles)


def test_iris_invocations_batch_answers_what_single_calls_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from keel.serving.app import build_app
    from keel.serving.service import open_service

    project = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", project, ignore=shutil.ignore_patterns(".keel", "output"))
    assert keel("train", cwd=project).returncode == 0
    row = _rows(project)[0]
    monkeypatch.chdir(project)
    with TestClient(build_app(open_service(config=project / "keel.yml"))) as http:
        single = http.post("/invocations", json=row)
        batch = http.post("/invocations", json={"instances": [row, row]})
    assert single.status_code == 200 and batch.status_code == 200, batch.text
    result = single.json()["result"]
    assert set(result) == {"species", "probabilities"}
    assert batch.json()["predictions"] == [result, result]


def _plain(value: Any) -> Any:
    """Results compared as JSON (numpy scalars and tuples as JSON has them)."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        value = value.to_dict(orient="records")
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )
