"""Verdicts: which columns drift, the dataset's verdict and the settings that change them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.config.models import MonitoringSection
from keel.errors import InvalidInput
from keel.monitoring.drift import ChosenTest, DriftSettings, compare
from keel.monitoring.profiles import profile_frame

rng = np.random.default_rng(7)


def data(
    n: int, shift: float = 0.0, mix: tuple[float, float, float] = (0.6, 0.3, 0.1)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "b": rng.normal(10, 2, n),
            "c": rng.choice(["x", "y", "z"], n, p=list(mix)),
            "d": rng.exponential(1, n),
        }
    )


def test_no_drift_on_the_same_distribution_and_drift_where_it_moved() -> None:
    reference = profile_frame(data(5000))
    same = compare(reference, profile_frame(data(3000)))
    assert not same.drifted and same.drift_share == 0
    assert {c.test for c in same.columns} == {"wasserstein", "jensenshannon"}
    moved = compare(reference, profile_frame(data(3000, shift=1.0, mix=(0.1, 0.3, 0.6))))
    assert moved.drifted_features == ["a", "c"]
    assert moved.drift_share == 0.5 and moved.drifted  # half the features: the dataset drifts


def test_small_references_get_p_value_tests() -> None:
    report = compare(profile_frame(data(500)), profile_frame(data(400, shift=1.0)))
    tests = {c.name: c.test for c in report.columns}
    assert tests == {"a": "ks", "b": "ks", "c": "chisquare", "d": "ks"}
    assert report.drifted_features == ["a"]
    assert all(c.p_value for c in report.columns)


def test_settings_choose_tests_thresholds_and_features() -> None:
    reference = profile_frame(data(5000))
    current = profile_frame(data(3000, shift=0.15))
    settings = DriftSettings(
        numeric=ChosenTest("psi", 0.5),
        per_feature={"a": ChosenTest("ks", 0.05)},
        exclude=["d"],
        drift_share=0.3,
    )
    report = compare(reference, current, settings)
    by_name = {c.name: c for c in report.columns}
    assert set(by_name) == {"a", "b", "c"}
    assert by_name["a"].test == "ks" and by_name["a"].drifted
    assert by_name["b"].test == "psi" and by_name["b"].threshold == 0.5
    assert report.drifted  # 1 of 3 ≥ 0.3
    only = compare(reference, current, DriftSettings(features=["a*", "c"]))
    assert [c.name for c in only.columns] == ["a", "c"]


def test_settings_from_keel_yml() -> None:
    section = MonitoringSection.model_validate(
        {
            "numeric": {"test": "ks"},
            "per_feature": {"c": {"test": "psi", "threshold": 0.2}},
            "drift_share": 0.25,
            "exclude": ["species"],
        }
    )
    settings = DriftSettings.from_section(section)
    assert settings.numeric == ChosenTest("ks", None)
    assert settings.per_feature["c"] == ChosenTest("psi", 0.2)
    assert settings.drift_share == 0.25 and settings.exclude == ["species"]
    with pytest.raises(ValueError):
        MonitoringSection.model_validate({"numeric": {"test": "bogus"}})


def test_a_feature_never_sent_live_is_named_and_not_counted() -> None:
    reference = profile_frame(data(2000))
    current = profile_frame(data(1000).drop(columns=["d"]))
    report = compare(reference, current)
    assert report.missing_features == ["d"]
    assert "d" not in report.drifted_features
    assert report.drift_share == round(len(report.drifted_features) / 3, 6)  # of a, b, c
    d = next(c for c in report.columns if c.name == "d")
    assert d.current_rows == 0 and d.note == "no live values" and not d.drifted


def test_outputs_are_compared_but_do_not_make_the_dataset_drift() -> None:
    ref_out = pd.DataFrame({"label": rng.choice(["p", "q"], 2000, p=[0.5, 0.5])})
    cur_out = pd.DataFrame({"label": rng.choice(["p", "q"], 1000, p=[0.95, 0.05])})
    report = compare(profile_frame(data(2000), ref_out), profile_frame(data(1000), cur_out))
    out = [c for c in report.columns if c.role == "output"]
    assert [(c.name, c.drifted) for c in out] == [("label", True)]
    assert not report.drifted
    without = compare(
        profile_frame(data(2000), ref_out),
        profile_frame(data(1000), cur_out),
        DriftSettings(outputs=False),
    )
    assert all(c.role == "input" for c in without.columns)


def test_a_test_that_does_not_fit_the_column_is_said_not_run() -> None:
    report = compare(
        profile_frame(data(2000)),
        profile_frame(data(1000)),
        DriftSettings(per_feature={"c": ChosenTest("ks")}),
    )
    c = next(col for col in report.columns if col.name == "c")
    assert c.statistic is None and "does not apply" in c.note and not c.drifted
    with pytest.raises(InvalidInput, match="unknown drift test"):
        compare(
            profile_frame(data(100)),
            profile_frame(data(100)),
            DriftSettings(per_feature={"a": ChosenTest("nope")}),
        )
