"""A small keel project in tmp_path: keel.yml, model code and CSV data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

MODEL_CODE = '''
import keel


class MeanModel(keel.Model):
    """Predicts y as x times the mean ratio y/x of the training data."""

    def train(self, ctx):
        df = ctx.sources["train"].get_dataframe()
        keel.report("train_data", df)
        ctx.report("had_previous", ctx.previous is not None)
        if ctx.params.get("fail"):
            raise ValueError("training data is bad: " + ctx.params["fail"])
        (ctx.model_dir / "notes.txt").write_text("trained")
        return {"ratio": float((df["y"] / df["x"]).mean()), "generation": (ctx.previous or {}).get("generation", 0) + 1}

    def evaluate(self, ctx, fitted):
        df = ctx.sources["test"].get_dataframe()
        error = (df["x"] * fitted["ratio"] - df["y"]).abs().mean()
        return {"mae": float(error), "rows": len(df), "pairs": [[1, 2], [3, 4]]}

    def predict(self, ctx, fitted, inputs):
        return {"y": inputs["x"] * fitted["ratio"], "code": CODE_VERSION}

    def generate_dataset(self, ctx):
        df = ctx.sources["raw"].get_dataframe()
        return df[df["x"] > 0]


CODE_VERSION = "v1"
'''

CONFIG = """\
project: tests
model:
  name: ratio
  version: "1.0.0"
  module: ratio_model
  params: {scale: 2, nested: {depth: 3}}
dbms:
  warehouse: {connection_string: "sqlite:///warehouse.db", password_var: KEEL_TEST_SECRET}
datasources:
  train: {type: csv, path: data/train.csv, tags: [train]}
  test: {type: csv, path: data/test.csv, tags: [test]}
  raw: {type: csv, path: data/train.csv, tags: [dataset]}
  score: {type: csv, path: data/score.csv, tags: [predict]}
datasinks:
  scored: {type: csv, path: out/scored.csv, tags: [predict]}
"""

SECRET = "s3cr3t-planted-value"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with keel.yml; the store is ./.keel in it (the working folder)."""
    monkeypatch.setenv("KEEL_TEST_SECRET", SECRET)
    root = tmp_path
    (root / "data").mkdir()
    (root / "ratio_model.py").write_text(MODEL_CODE)
    (root / "keel.yml").write_text(CONFIG)
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]}).to_csv(
        root / "data/train.csv", index=False
    )
    pd.DataFrame({"x": [5.0, 6.0], "y": [10.0, 12.0]}).to_csv(root / "data/test.csv", index=False)
    pd.DataFrame({"x": [float(i) for i in range(25)]}).to_csv(root / "data/score.csv", index=False)
    return root
