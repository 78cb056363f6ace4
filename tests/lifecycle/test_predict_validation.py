"""``keel predict`` checks its input with the schema the server checks ``/invocations`` with,
and refuses in the same words; without a model section or a keel.yml it says so in one line.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.cli import main
from keel.errors import ConfigError

API = """\
api:
  name: ratio
  resources:
    - name: predict
      kind: query
      inputs:
        x: {type: number, min: 0}
        note: {type: string, required: false}
"""


def _predict(
    payload: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``keel predict -`` with ``payload`` on stdin, in this process."""
    monkeypatch.setattr(sys, "argv", ["keel", "predict", "-"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(payload)))
    capsys.readouterr()
    try:
        main(["predict", "-"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(project: Path) -> Path:
    """The lifecycle project with declared inputs, trained once."""
    from keel.lifecycle import train

    (project / "keel.yml").write_text((project / "keel.yml").read_text() + API)
    train(project / "keel.yml")
    return project


@pytest.fixture
def server(trained: Path) -> Iterator[Any]:
    """The prediction API of the same version, in this process."""
    from fastapi.testclient import TestClient

    from keel.serving.app import build_app
    from keel.serving.service import open_service

    service = open_service(config=trained / "keel.yml")
    with TestClient(build_app(service)) as client:
        yield client


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"note": "x left out"}, "x"),
        ({"x": "abc"}, "x"),
        ({"x": -1}, "x"),
        ({"x": 1, "petal": 2}, "petal"),
    ],
)
def test_cli_refuses_what_the_server_refuses_in_the_same_words(
    payload: Any,
    field: str,
    server: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = server.post("/invocations", json=payload)
    assert answer.status_code == 422
    code, out, err = _predict(payload, capsys, monkeypatch)
    assert code == 1 and out == ""
    assert err == f"error: {answer.json()['message']}\n"
    assert f"invalid input {field}:" in err


def test_several_bad_fields_are_named_with_what_is_wrong(
    trained: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _predict({"note": 3, "extra": 1}, capsys, monkeypatch)
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: 3 invalid inputs: ")
    for part in ("x: Field required", "note: Input should be a valid string", "extra: Extra"):
        assert part in err


def test_one_prediction_takes_one_object(
    trained: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _predict([{"x": 1}], capsys, monkeypatch)
    assert code == 1 and out == ""
    assert err == "error: invalid input (body): expected a JSON object\n"


def test_valid_input_reaches_the_model_as_the_server_passes_it(
    server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "3" is read as the number 3.0 by the schema, on both ways in
    code, out, err = _predict({"x": "3"}, capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out) == server.post("/invocations", json={"x": "3"}).json()["result"]
    assert json.loads(out)["y"] == pytest.approx(6.0)


def test_without_declared_inputs_the_model_error_stays_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.lifecycle import train

    train(project / "keel.yml")
    code, out, err = _predict({"z": 1}, capsys, monkeypatch)
    assert code == 1 and out == ""
    assert err.startswith(
        "error: KeyError: 'x' (in predict() of the model version's stored code, line "
    )
    assert len(err.splitlines()) == 1


def test_a_real_terminal_shows_one_line(trained: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_STORE", "KEEL_CONFIG")}
    done = subprocess.run(
        [sys.executable, "-m", "keel.cli", "predict", "--arg", "x=abc"],
        cwd=trained,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: invalid input x: Input should be a valid number")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_no_model_section_is_one_clear_error(tmp_path: Path) -> None:
    from keel.config import load_config
    from keel.lifecycle.project import Project, require_model

    with pytest.raises(ConfigError, match=r"no keel.yml found in .*keel init NAME.*-c FILE"):
        require_model(load_config())
    (tmp_path / "keel.yml").write_text("project: p\n")
    project = Project.open(tmp_path / "keel.yml")
    with pytest.raises(ConfigError, match="has no model: section"):
        project.name  # noqa: B018  (the property raises)
    assert project.label is None


def test_a_pickled_version_loads_without_skops(project: Path) -> None:
    """The stored code is unpickled anyway: the fitted model is read from its cloudpickle
    copy, not through skops (seconds of imports on every keel predict)."""
    pytest.importorskip("skops")
    from keel import Client
    from keel.lifecycle import train
    from keel.lifecycle.artifact import Manifest

    config = project / "keel.yml"
    config.write_text(
        config.read_text().replace(
            "module: ratio_model", "module: ratio_model\n  formats: [skops, cloudpickle]"
        )
    )
    train(config)
    client = Client(config=config)
    folder = client.get_model_artifact(client.get_model_version("ratio@latest"))
    assert [f.format for f in Manifest.read(folder).fitted] == ["skops", "cloudpickle"]
    script = (
        "import sys, keel\n"
        "model = keel.load_model('ratio')\n"
        "print(model.predict({'x': 2})['y'], 'skops.io' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4.0", "False"]


def test_a_current_store_opens_without_alembic(trained: Path) -> None:
    """The schema check reads the head revision from the migration files (alembic costs a
    second of imports per command); it names the head alembic names."""
    from keel.store.engine import head_revision, quick_head_revision

    assert quick_head_revision() == head_revision()
    script = (
        "import sys, keel\n"
        "client = keel.Client(config='keel.yml')\n"
        "print(client.get_model_version('ratio@latest').version, 'alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=trained, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "False"]
