"""The drift tests on profiles against the same tests computed on the raw data with scipy
(Evidently's definitions): exact where the profiles kept the values, close where they are
read from sketches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from keel.monitoring.profiles import CATEGORY, NUMBER, ColumnProfile
from keel.monitoring.stattests import (
    TESTS,
    auto_test,
    chisquare_p_value,
    jensenshannon,
    ks_p_value,
    psi,
    wasserstein_norm,
    z_p_value,
)

rng = np.random.default_rng(42)


def column(values: object, kind: str = NUMBER) -> ColumnProfile:
    out = ColumnProfile(kind)
    out.update(pd.Series(values))
    return out


def test_ks_on_small_samples_is_scipys_exactly() -> None:
    a, b = rng.normal(0, 1, 400), rng.normal(0.2, 1, 300)
    assert ks_p_value(column(a), column(b)) == pytest.approx(stats.ks_2samp(a, b).pvalue)


def test_ks_from_sketches_never_invents_a_drift_and_finds_a_real_one() -> None:
    # 90,000 values: the sketches' rank error (~1.3%) is larger than the gap KS would call
    # significant, so the gap within that error is not counted (as DataSketches' ks_test)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.01, 1, 40_000)
    assert stats.ks_2samp(a, b).pvalue > 0.05
    assert ks_p_value(column(a), column(b)) > 0.05
    far = rng.normal(0.3, 1, 40_000)
    assert ks_p_value(column(a), column(far)) < 1e-6
    # a small exact reference against a sketched live column: close to scipy
    small = rng.normal(0, 1, 800)
    shifted = rng.normal(0.25, 1, 40_000)
    assert stats.ks_2samp(small, shifted).pvalue < 0.05
    assert ks_p_value(column(small), column(shifted)) < 0.05


def test_wasserstein_is_normalised_by_the_reference_std() -> None:
    a, b = rng.normal(5, 2, 500), rng.normal(5.5, 2, 400)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein_norm(column(a), column(b)) == pytest.approx(expected, rel=1e-9)
    big_a, big_b = rng.normal(5, 2, 100_000), rng.normal(5.5, 2, 50_000)
    expected = stats.wasserstein_distance(big_a, big_b) / np.std(big_a)
    assert wasserstein_norm(column(big_a), column(big_b)) == pytest.approx(expected, abs=0.02)


def evidently_shares(
    a: pd.Series, b: pd.Series, fill: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's get_binned_data for categories (zeros filled as it fills them for PSI;
    its Jensen-Shannon fills none)."""
    keys = sorted(set(a.dropna()) | set(b.dropna()))
    p = np.array([(a == k).sum() for k in keys]) / len(a)
    q = np.array([(b == k).sum() for k in keys]) / len(b)
    for shares in (p, q) if fill else ():
        smallest = shares[shares > 0].min()
        shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return p, q


def test_jensen_shannon_and_psi_on_categories() -> None:
    a = pd.Series(rng.choice(list("abcd"), 3000, p=[0.4, 0.3, 0.2, 0.1]))
    b = pd.Series(rng.choice(list("abce"), 2000, p=[0.25, 0.25, 0.25, 0.25]))
    ca, cb = column(a, CATEGORY), column(b, CATEGORY)
    p, q = evidently_shares(a, b, fill=False)
    assert jensenshannon(ca, cb) == pytest.approx(distance.jensenshannon(p, q), rel=1e-9)
    p, q = evidently_shares(a, b)
    assert psi(ca, cb) == pytest.approx(float(np.sum((p - q) * np.log(p / q))), rel=1e-9)


def test_chi_squared_against_scipy_and_a_new_category() -> None:
    a = pd.Series(rng.choice(list("abc"), 600, p=[0.5, 0.3, 0.2]))
    b = pd.Series(rng.choice(list("abc"), 400, p=[0.45, 0.35, 0.2]))
    counts_a = a.value_counts().sort_index()
    counts_b = b.value_counts().sort_index()
    expected = stats.chisquare(counts_b, counts_a / counts_a.sum() * counts_b.sum()).pvalue
    assert chisquare_p_value(column(a, CATEGORY), column(b, CATEGORY)) == pytest.approx(expected)
    unseen = pd.Series(["a"] * 10 + ["z"])
    assert chisquare_p_value(column(a, CATEGORY), column(unseen, CATEGORY)) == 0.0


def test_z_test_on_a_binary_column() -> None:
    a = pd.Series(rng.random(800) < 0.3)
    b = pd.Series(rng.random(700) < 0.45)
    n1, n2 = len(a), len(b)
    top = a.value_counts().idxmax()
    p1, p2 = (a != top).mean(), (b != top).mean()
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    expected = 2 * (1 - stats.norm.cdf(abs(z)))
    assert z_p_value(column(a, CATEGORY), column(b, CATEGORY)) == pytest.approx(expected)


def test_auto_choice_follows_evidentlys_defaults() -> None:
    small_num = column(rng.normal(0, 1, 500))
    big_num = column(rng.normal(0, 1, 5000))
    small_cat = column(rng.choice(list("abc"), 500), CATEGORY)
    big_cat = column(rng.choice(list("abc"), 5000), CATEGORY)
    binary = column(rng.random(500) < 0.5, CATEGORY)
    few = column(rng.integers(0, 4, 500))  # a number with 4 values: a category
    assert auto_test(small_num, small_num, 1000) == "ks"
    assert auto_test(big_num, big_num, 1000) == "wasserstein"
    assert auto_test(small_cat, small_cat, 1000) == "chisquare"
    assert auto_test(big_cat, big_cat, 1000) == "jensenshannon"
    assert auto_test(binary, binary, 1000) == "z"
    assert auto_test(few, few, 1000) == "chisquare"


def test_numbers_are_binned_as_evidently_bins_them() -> None:
    """Jensen-Shannon and PSI on numbers: Sturges' number of equal-width bins over both
    columns' range; per value when the reference has at most 20 values."""
    a, b = rng.normal(0, 1, 700), rng.normal(0.3, 1, 600)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    p = np.histogram(a, edges)[0] / len(a)
    q = np.histogram(b, edges)[0] / len(b)
    assert jensenshannon(column(a), column(b)) == pytest.approx(
        distance.jensenshannon(p, q), rel=1e-9
    )
    few_a, few_b = rng.integers(0, 12, 700), rng.integers(0, 12, 600)
    p, q = evidently_shares(pd.Series(few_a), pd.Series(few_b), fill=False)
    assert jensenshannon(column(few_a), column(few_b)) == pytest.approx(
        distance.jensenshannon(p, q), rel=1e-9
    )


def test_verdicts_by_kind_of_statistic() -> None:
    assert TESTS["ks"].drifted(0.01, 0.05) and not TESTS["ks"].drifted(0.5, 0.05)
    assert TESTS["ks"].drifted(0.05, 0.05)  # Evidently's KS drifts at the threshold too
    assert not TESTS["chisquare"].drifted(0.05, 0.05)
    assert TESTS["wasserstein"].drifted(0.1, 0.1) and not TESTS["wasserstein"].drifted(0.09, 0.1)
    assert not TESTS["psi"].drifted(math.nan, 0.1)
