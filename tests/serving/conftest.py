"""A trained model project for the serving tests, and the app around it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

MODEL_CODE = '''
import time

import numpy as np
import pandas as pd

import keel


class Scorer(keel.Model):
    """score = x * weight; ``x < 0`` fails; ``sleep`` slows a call; ids look up a table."""

    def train(self, ctx):
        df = ctx.sources["train"].get_dataframe()
        return {"weight": float((df["y"] / df["x"]).mean())}

    def setup(self, ctx):
        marker = ctx.params.get("setup_marker")
        if marker:
            with open(marker, "a") as fh:
                fh.write("setup\\n")

    def teardown(self, ctx):
        marker = ctx.params.get("setup_marker")
        if marker:
            with open(marker, "a") as fh:
                fh.write("teardown\\n")

    def predict(self, ctx, fitted, inputs):
        if "upload" in inputs:
            text = inputs["upload"].read().decode()
            return {"lines": len(text.splitlines()), "name": inputs["upload"].filename,
                    "label": inputs.get("label")}
        if "item_id" in inputs:  # looked up in a data source; numpy/pandas values
            rows = ctx.sources["rows"].get_dataframe()
            found = rows[rows["n"] == inputs["item_id"]]
            if found.empty:
                raise keel.errors.NotFound(f"no item {inputs['item_id']}")
            row = found.iloc[0]
            return {"item": row["n"], "score": row["n"] * fitted["weight"], "kind": row["kind"],
                    "x": row["x"], "when": pd.Timestamp("2026-01-02T03:04:05Z"),
                    "vector": np.arange(3)}
        return self._score(fitted, inputs)

    def predict_batch(self, ctx, fitted, batch):
        BATCHES.append(len(batch))
        return [self._score(fitted, row) for row in keel_records(batch)]

    def _score(self, fitted, inputs):
        if inputs.get("sleep"):
            time.sleep(inputs["sleep"])
        if inputs["x"] == 42:
            raise keel.errors.InvalidInput("x = 42 is reserved: pick another x")
        if inputs["x"] < 0:
            raise ValueError("x must not be negative: secret internals here")
        return {"score": inputs["x"] * fitted["weight"], "tags": inputs.get("tags")}


def keel_records(batch):
    from keel.models.base import records

    return records(batch)


BATCHES = []
'''

CONFIG = """\
project: serving
model:
  name: scorer
  version: "2.1.0"
  module: scorer_model
  params: {{setup_marker: {marker}}}
datasources:
  train: {{type: csv, path: data/train.csv, tags: [train]}}
  rows: {{type: csv, path: data/rows.csv, tags: [predict]}}
api:
  name: scores
  record_invokes: {record}
  max_body_mb: 0.01
  batching: {{enabled: {batching}, max_batch_size: 16, max_wait_ms: 5}}
  record_flush_s: 0.2
  resources:
    - name: score
      kind: query
      inputs:
        x: {{type: number, min: -100, max: 100}}
        tags: {{type: "string[]", required: false}}
        sleep: {{type: number, default: 0, max: 2}}
    - name: item
      kind: id
      id: {{name: item_id, type: integer}}
    - name: upload
      kind: file
      file: upload
      inputs:
        label: {{type: string, enum: [a, b], required: false}}
"""


def write_project(root: Path, record: bool = True, batching: bool = False) -> Path:
    (root / "data").mkdir(exist_ok=True)
    (root / "scorer_model.py").write_text(MODEL_CODE)
    marker = root / "lifecycle.log"
    (root / "keel.yml").write_text(
        CONFIG.format(marker=marker, record=str(record).lower(), batching=str(batching).lower())
    )
    pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 6.0]}).to_csv(root / "data/train.csv", index=False)
    pd.DataFrame(
        {"x": [1.5, 2.5, None], "n": [1, 2, 3], "kind": ["a", "b", "a"], "ok": [True, False, True]}
    ).to_csv(root / "data/rows.csv", index=False)
    return root / "keel.yml"


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project (store in ./.keel) whose model scorer is trained: version 1, label 2.1.0."""
    monkeypatch.chdir(tmp_path)
    for var in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    config = write_project(tmp_path)
    from keel.lifecycle.training import train

    train(config)
    # training ran setup and teardown to predict its monitoring reference's outputs: the
    # tests count those of serving
    (tmp_path / "lifecycle.log").unlink(missing_ok=True)
    return tmp_path


def reconfigure(root: Path, **kwargs: bool) -> Path:
    return write_project(root, **kwargs)


@pytest.fixture
def app_client(trained: Path) -> Iterator:
    """An ASGI test client of the served model (recording on, batching off)."""
    yield from _client(trained)


def _client(root: Path) -> Iterator:
    from fastapi.testclient import TestClient

    from keel.serving.app import build_app
    from keel.serving.service import open_service

    service = open_service(config=root / "keel.yml")
    with TestClient(build_app(service), raise_server_exceptions=False) as client:
        client.service = service  # type: ignore[attr-defined]
        yield client


def start_server(root: Path, port: int, workers: int = 1, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keel.cli",
            "-c",
            str(root / "keel.yml"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *extra,
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
