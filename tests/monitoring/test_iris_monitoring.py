"""A version's monitoring end to end on the iris example, through the Python API and the CLI:
the reference profile made at training, live windows, drift per window, records profiled
afterwards (``keel monitor update``) and live quality from late labels."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from keel.entities import InvocationRecord
from keel.errors import InvalidInput
from keel.lifecycle.monitoring import check_version, drift, profile_version, update
from keel.monitoring.check import parse_duration
from keel.monitoring.live import LiveProfiler
from keel.monitoring.storage import load_reference, window_files
from monitoring.helpers import HOUR_MS, feed, keel_cli, shifted, trained_iris, training_like

SHIFT = {"petal_length": 2.5, "petal_width": 1.0}


@pytest.fixture
def iris(tmp_path: Path) -> tuple[Path, Any, Any]:
    return trained_iris(tmp_path)


def test_training_makes_the_reference_profile_of_inputs_and_outputs(iris: Any) -> None:
    project, client, mv = iris
    reference = load_reference(client, mv)
    train_rows = pd.read_csv(project / "data/iris_train.csv")
    assert reference.rows == len(train_rows)
    # the API's declared inputs are the features: the label column is left out
    assert sorted(reference.inputs) == sorted(
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    )
    assert set(reference.outputs) == {
        "species",
        "probabilities.setosa",
        "probabilities.versicolor",
        "probabilities.virginica",
    }
    assert reference.meta["source"] == "iris_train"
    assert reference.meta["monitoring"]["drift_share"] == 0.5  # keel.yml's settings, stored
    assert reference.inputs["petal_length"].mean == pytest.approx(train_rows.petal_length.mean())


def test_training_like_traffic_does_not_drift_and_shifted_traffic_does(iris: Any) -> None:
    project, client, mv = iris
    now = int(time.time() * 1000) // HOUR_MS * HOUR_MS  # records of a feed stay in one hour
    feed(client, mv, training_like(project, 300), now - 5 * HOUR_MS)
    calm = check_version(client, mv, since="1d", window="1h")
    assert not calm.drifted and calm.report.drifted_features == []
    feed(client, mv, shifted(training_like(project, 900, seed=1), SHIFT), now - 2 * HOUR_MS)
    check = check_version(client, mv, since="1d", window="1h")
    assert check.drifted
    assert check.report.drifted_features == ["petal_length", "petal_width"]
    assert [w.drifted for w in check.windows] == [False, True]
    assert [w.records for w in check.windows] == [300, 900]
    assert check.windows[1].drifted_features == ["petal_length", "petal_width"]
    # the model's outputs moved with its inputs
    outputs = {c.name: c.drifted for c in check.report.columns if c.role == "output"}
    assert outputs["species"] is True
    assert check.windows[0].latency_ms["p50"] > 0
    # one window of a day merges the hours
    daily = check_version(client, mv, since="1d", window="1d")
    assert sum(w.records for w in daily.windows) == 1200
    data = check.to_dict(histograms=True)
    assert data["drifted"] and set(data["histograms"]) >= {"petal_length", "output:species"}
    hist = data["histograms"]["petal_length"]
    assert len(hist["edges"]) == 21 and sum(hist["reference"]) == pytest.approx(1)


def test_the_cli_shows_the_verdict_and_exits_1_on_drift(iris: Any) -> None:
    project, client, mv = iris
    now = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    feed(client, mv, training_like(project, 300), now - 3 * HOUR_MS)
    calm = keel_cli(project, "monitor", "drift", "iris@1", "--since", "1d", "--window", "1h")
    assert calm.returncode == 0, calm.stderr
    assert "no drift" in calm.stdout and "petal_length" in calm.stdout
    feed(client, mv, shifted(training_like(project, 900, seed=2), SHIFT), now - HOUR_MS)
    drifted = keel_cli(project, "monitor", "drift", "iris@1", "--since", "1d", "--json")
    assert drifted.returncode == 1, drifted.stderr
    data = json.loads(drifted.stdout)
    assert data["drifted"] and data["drifted_features"] == ["petal_length", "petal_width"]
    assert sum(w["records"] for w in data["windows"]) == 1200
    bad = keel_cli(project, "monitor", "drift", "iris@1", "--since", "a week")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "not a duration" in bad.stderr
    missing = keel_cli(project, "monitor", "drift", "nosuch@1")
    assert missing.returncode == 2 and "no model named 'nosuch'" in missing.stderr
    shown = keel_cli(project, "monitor", "show", "iris@1", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["rows"] == 120


def test_profile_on_demand_from_another_source(iris: Any) -> None:
    project, client, mv = iris
    made = profile_version("iris@1", source="iris_test", config=project / "keel.yml", client=client)
    assert made.rows == 30 and made.meta["source"] == "iris_test"
    assert load_reference(client, mv).rows == 30  # replaced
    cli = keel_cli(project, "monitor", "profile", "iris@1", "--source", "iris_train")
    assert cli.returncode == 0, cli.stderr
    assert "120 rows (iris_train)" in cli.stdout
    nothing = keel_cli(project, "monitor", "profile", "iris@1", "--source", "nope")
    assert nothing.returncode == 1 and "nope" in nothing.stderr


def records_at(mv: Any, rows: pd.DataFrame, at_ms: int, prefix: str) -> list[InvocationRecord]:
    return [
        InvocationRecord(
            f"ts-{prefix}-{i}",
            mv.model,
            mv.version,
            at_ms + i,
            1.0,
            "ok" if i % 10 else "error",
            "species",
            {k: float(v) for k, v in row.items()},
            {"species": "setosa"},
        )
        for i, row in enumerate(rows.to_dict("records"))
    ]


def test_update_profiles_records_no_server_profiled_once(iris: Any) -> None:
    project, client, mv = iris
    now = int(time.time() * 1000)
    hour = now // HOUR_MS * HOUR_MS
    old = records_at(mv, training_like(project, 200), hour - 3 * HOUR_MS, "a")
    client.log_invocations(mv, old)
    live = feed(client, mv, training_like(project, 100, seed=5), hour - 2 * HOUR_MS)
    assert live
    first = update("iris@1", config=project / "keel.yml", client=client)
    assert first.records == 200 and first.skipped_live == 1  # the live-profiled hour is left
    again = update("iris@1", config=project / "keel.yml", client=client)
    assert again.records == 0 and again.windows == []  # nothing new: nothing read twice
    later = records_at(mv, training_like(project, 50, seed=6), hour - 3 * HOUR_MS + 500, "b")
    client.log_invocations(mv, later)
    third = update("iris@1", config=project / "keel.yml", client=client)
    assert third.records == 50
    check = check_version(client, mv, since="1d", window="1h")
    by_start = {w.start_ms: w for w in check.windows}
    assert by_start[hour - 3 * HOUR_MS].records == 250
    assert by_start[hour - 3 * HOUR_MS].errors == 25  # every tenth was an error
    assert by_start[hour - 2 * HOUR_MS].records == 100
    cli = keel_cli(project, "monitor", "update", "iris@1", "--json")
    assert cli.returncode == 0 and json.loads(cli.stdout)["records"] == 0


def test_live_quality_from_late_labels(iris: Any) -> None:
    project, client, mv = iris
    now = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    rows = pd.read_csv(project / "data/iris_test.csv")
    records = feed(client, mv, rows.drop(columns=["species"]), now - HOUR_MS)
    # labels arrive later, for all but the last five records
    labels = pd.DataFrame(
        {"request_id": [r.request_id for r in records][:-5], "truth": rows.species[:-5]}
    )
    labels.to_csv(project / "data/labels.csv", index=False)
    config = yaml.safe_load((project / "keel.yml").read_text())
    config["datasources"]["labels"] = {"type": "csv", "path": "data/labels.csv"}
    config["monitoring"] = {
        "labels": {"source": "labels", "label_column": "truth", "prediction": "species"}
    }
    (project / "keel.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    check = drift("iris@1", since="1d", window="1h", config=project / "keel.yml", client=client)
    quality = check.windows[0].quality
    predicted = [r.result["species"] for r in records][:-5]
    expected = sum(p == t for p, t in zip(predicted, rows.species[:-5], strict=True)) / 25
    assert quality == {"metric": "accuracy", "value": round(expected, 6), "labelled": 25}


def test_live_profiler_stores_on_time_and_never_overwrites_a_forgotten_window(
    iris: Any,
) -> None:
    project, client, mv = iris
    clock = [1_000_000.0]
    profiler = LiveProfiler(client, mv, window_s=60, flush_s=30, writer="w", clock=lambda: clock[0])
    rows = training_like(project, 20)
    profiler.add(records_at(mv, rows, int(clock[0] * 1000), "x"))
    profiler.flush()
    assert profiler.stored == 0  # not yet flush_s
    clock[0] += 31
    profiler.flush()
    assert profiler.stored == 1
    clock[0] += 600  # long after: the window is forgotten
    profiler.flush(force=True)
    late = records_at(mv, rows, 1_000_000_000 + 5, "late")  # a late record for that window
    profiler.add(late)
    profiler.flush(force=True)
    writers = sorted(w.writer for w in window_files(client, mv))
    assert writers == ["w", "w-1"]  # the late record went to a file of its own


def test_durations_and_limits(iris: Any) -> None:
    _project, client, mv = iris
    assert parse_duration("7d") == 7 * 86400 and parse_duration("500ms") == 0.5
    assert parse_duration("1.5h") == 5400
    assert parse_duration(90) == 90  # a number (not text) is seconds
    for bad in ("", "7", "-1d", "0s", "d7", "7 days"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)
    with pytest.raises(InvalidInput, match="choose a longer window"):
        check_version(client, mv, since="1000d", window="1h")
