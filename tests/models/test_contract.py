"""The model contract's parts: context, report summaries, save formats, library check."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pandas as pd
import pytest

from keel.errors import ArtifactError, ConfigError, KeelError, NotFound
from keel.models.base import MemoryTracker, ModelContext, PhaseData, batch_frame, records
from keel.models.formats import SavedFile, known_formats, load_fitted, save_fitted
from keel.models.libraries import LibraryVersionWarning, check_libraries, libraries_in_use
from keel.models.report import report, summarize, tracking


class Doubler:
    """Defined in a test module: skops does not trust it."""

    def __init__(self, factor: int) -> None:
        self.factor = factor


def test_phase_data_names_what_exists() -> None:
    data = PhaseData({"train": 1, "extra": 2}, "data source", "train")
    assert data["train"] == 1
    with pytest.raises(
        NotFound, match=r"no data source 'tset' for phase 'train' \(available: extra, train\)"
    ):
        data["tset"]


def test_context_params_and_report_go_to_the_tracker() -> None:
    tracker = MemoryTracker()
    ctx = ModelContext("train", {"name": "m", "params": {"C": 2}}, tracker=tracker)
    assert ctx.params == {"C": 2} and ctx.name == "m"
    ctx.log_params(alpha=0.1)
    ctx.log_metrics({"acc": 0.5})
    with tracking(tracker):
        report("frame", pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]}))
    assert tracker.params == {"alpha": 0.1} and tracker.metrics == {"acc": 0.5}
    frame = tracker.items["frame"]
    assert frame["shape"] == [3, 2] and frame["columns"] == ["a", "b"]
    assert frame["dtypes"] == {"a": "int64", "b": "object"} or frame["dtypes"]["a"] == "int64"
    assert frame["describe"]["a"]["mean"] == 2.0 and frame["describe"]["b"]["top"] == "x"


def test_report_outside_a_run_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="keel.report"):
        report("x", 1)
    assert "not recorded" in caplog.text


def test_summaries_are_json_friendly() -> None:
    import numpy as np

    assert summarize(np.arange(3)) == [0, 1, 2]
    big = summarize(np.zeros((100, 20)))
    assert big["type"] == "ndarray" and big["shape"] == [100, 20]
    assert summarize({"when": pd.Timestamp("2024-01-01")}) == {"when": "2024-01-01T00:00:00"}
    assert summarize(object()).startswith("<object object")


def test_batch_frames_keep_the_inputs() -> None:
    batch = pd.DataFrame({"x": [1, 2]}, index=[10, 11])
    assert batch_frame(batch, [5, 6]).to_dict("list") == {"x": [1, 2], "prediction": [5, 6]}
    both = batch_frame(batch, [{"y": 1, "x": 0}, {"y": 2, "x": 0}])
    assert both.to_dict("list") == {"y": [1, 2], "x": [0, 0]}
    assert records([{"a": 1}]) == [{"a": 1}]
    with pytest.raises(KeelError, match="returned 1 results for 2 inputs"):
        batch_frame(batch, [1])


@pytest.mark.parametrize("fmt", ["cloudpickle", "joblib", "skops"])
def test_each_format_round_trips_a_fitted_estimator(tmp_path: Path, fmt: str) -> None:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    saved = save_fitted(fitted, tmp_path, [fmt])
    loaded = load_fitted(tmp_path, saved, "m v1")
    assert loaded.predict([[2.5]]).tolist() == [1]
    assert fmt in known_formats()


def test_loading_falls_back_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    saved = save_fitted(Doubler(2), tmp_path, ["skops", "cloudpickle"])
    assert [s.format for s in saved] == ["skops", "cloudpickle"]
    with caplog.at_level(logging.WARNING, logger="keel.models.formats"):
        assert load_fitted(tmp_path, saved, "m v1").factor == 2
    assert "loaded as cloudpickle after skops" in caplog.text and "untrusted" in caplog.text


def test_loading_fails_with_every_reason(tmp_path: Path) -> None:
    (tmp_path / "fitted.joblib").write_bytes(b"not a pickle")
    saved = [SavedFile("joblib", "fitted.joblib"), SavedFile("cloudpickle", "fitted.cloudpickle")]
    with pytest.raises(
        ArtifactError,
        match=r"m v1: the fitted model could not be loaded \(joblib: .*; cloudpickle: FileNotFoundError",
    ):
        load_fitted(tmp_path, saved, "m v1")


def test_unknown_format_lists_the_known() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown save format 'onnx' \(known: cloudpickle, joblib, skops"
    ):
        save_fitted(1, Path("."), ["onnx"])


def test_library_versions_are_compared_by_major_and_minor() -> None:
    in_use = libraries_in_use()
    assert "pandas" in in_use and "numpy" in in_use
    assert check_libraries({"pandas": in_use["pandas"]}, "m v1") == []
    major, minor, *_ = in_use["pandas"].split(".")
    patch_only = f"{major}.{minor}.999"
    assert check_libraries({"pandas": patch_only}, "m v1") == []
    with pytest.warns(LibraryVersionWarning) as caught:
        found = check_libraries({"pandas": "0.1.0", "no-such-dist-keel": "1.0"}, "model m v1")
    assert found == [
        "no-such-dist-keel 1.0 (not installed now)",
        f"pandas 0.1.0 (now {in_use['pandas']})",
    ]
    messages = [str(w.message) for w in caught]
    assert any("model m v1 was trained with pandas 0.1.0" in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_libraries({}, "m")
