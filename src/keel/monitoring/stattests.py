"""The drift tests, computed on two column profiles (reference, current) with scipy.

Each follows Evidently's definition of the same test, so that a verdict here and there agree
on the same data: KS and chi-squared and the two-proportion Z-test give a p-value (drift when
below the threshold, default 0.05); Wasserstein distance (divided by the reference's standard
deviation), Jensen–Shannon distance and PSI give a distance (drift when at or above the
threshold, default 0.1). Numbers are read from the profiles' values when they were kept
(small samples: exact), else from their quantile sketches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from keel.monitoring.profiles import NUMBER, ColumnProfile

#: quantile ranks at which two sketched distributions are compared
_GRID = 2_000


@dataclass(frozen=True)
class StatTest:
    """A drift test: its name, what it measures and how its result is judged."""

    name: str
    title: str
    kinds: tuple[str, ...]  # column kinds it applies to ("number", "category")
    p_value: bool  # True: drift when the result < threshold; False: when >= threshold
    default_threshold: float
    run: Callable[[ColumnProfile, ColumnProfile], float]
    at_threshold: bool = False  # a p-value equal to the threshold drifts too (Evidendly's KS)

    def drifted(self, value: float, threshold: float) -> bool:
        if math.isnan(value):
            return False
        if self.p_value:
            return value <= threshold if self.at_threshold else value < threshold
        return value >= threshold


# --- tests on numbers -------------------------------------------------------------------------


def ks_p_value(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Two-sample Kolmogorov–Smirnov test (scipy's ``ks_2samp`` on kept values; from the
    sketches, the largest CDF gap less the sketches' rank errors, with the asymptotic
    p-value)."""
    from scipy import stats

    if not ref.count or not cur.count:
        return math.nan
    if ref.exact is not None and cur.exact is not None:
        return float(stats.ks_2samp(ref.exact, cur.exact).pvalue)
    points = sorted(set(_support(ref)) | set(_support(cur)))
    gap = max(
        max(abs(a - b) for a, b in zip(ref.cdf(points), cur.cdf(points), strict=True)),
        max(
            abs(a - b)
            for a, b in zip(ref.cdf_inclusive(points), cur.cdf_inclusive(points), strict=True)
        ),
    )
    # Two sketches' CDFs are each off by up to their rank error, which on big samples is
    # more than the gap KS calls significant: then only the gap beyond both errors is
    # evidence (as DataSketches' own ks_test judges), so sketches never invent a drift. With
    # one side exact (a small reference) the gap is used as it is, as exact KS would.
    if ref.exact is None and cur.exact is None:
        gap = max(0.0, gap - _rank_error(ref) - _rank_error(cur))
    n = ref.count * cur.count / (ref.count + cur.count)
    return float(stats.kstwo.sf(gap, max(1, round(n))))


def _rank_error(column: ColumnProfile) -> float:
    if column.exact is not None or not column.kll.is_estimation_mode():
        return 0.0
    return float(column.kll.normalized_rank_error(False))


def wasserstein_norm(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Wasserstein (earth mover's) distance divided by the reference's standard deviation
    (at least 0.001), as Evidently normalises it."""
    from scipy import stats

    if not ref.count or not cur.count:
        return math.nan
    norm = max(ref.std, 0.001)
    if ref.exact is not None and cur.exact is not None:
        return float(stats.wasserstein_distance(ref.exact, cur.exact)) / norm
    ranks = [(i + 0.5) / _GRID for i in range(_GRID)]
    a, b = ref.quantiles(ranks), cur.quantiles(ranks)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / _GRID / norm


def _support(column: ColumnProfile) -> list[float]:
    if column.exact is not None:
        return list(column.exact)
    ranks = [(i + 0.5) / _GRID for i in range(_GRID)]
    return [*column.quantiles(ranks), column.kll.get_min_value(), column.kll.get_max_value()]


# --- tests on frequencies -------------------------------------------------------------------


def _aligned(ref: ColumnProfile, cur: ColumnProfile) -> tuple[list[str], list[float], list[float]]:
    """The union of both columns' values and each one's count per value."""
    a, b = ref.frequencies() or {}, cur.frequencies() or {}
    keys = sorted(a.keys() | b.keys())
    return keys, [a.get(k, 0.0) for k in keys], [b.get(k, 0.0) for k in keys]


#: a number column of the reference with at most this many values is compared per value
PER_VALUE = 20


def _shares(ref: ColumnProfile, cur: ColumnProfile, fill: bool) -> tuple[list[float], list[float]]:
    """Each column's share per value (categories; numbers whose reference has at most 20
    values) or per bin (other numbers: Sturges' number of equal-width bins over both columns'
    range), as Evidently bins them; ``fill``: empty shares get Evidently's small value."""
    per_value = ref.kind != NUMBER or (
        ref.few is not None and len(ref.few) <= PER_VALUE and cur.few is not None
    )
    if per_value:
        _keys, a, b = _aligned(ref, cur)
        ta, tb = sum(a) or 1.0, sum(b) or 1.0
        p, q = [x / ta for x in a], [x / tb for x in b]
    else:
        lo = min(ref.kll.get_min_value(), cur.kll.get_min_value())
        hi = max(ref.kll.get_max_value(), cur.kll.get_max_value())
        if hi <= lo:
            return [1.0], [1.0]
        bins = math.ceil(math.log2(ref.count + cur.count) + 1)
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
        p, q = ref.bin_shares(edges), cur.bin_shares(edges)
    return (_fill_zeroes(p), _fill_zeroes(q)) if fill else (p, q)


def _fill_zeroes(shares: list[float]) -> list[float]:
    present = [s for s in shares if s > 0]
    if not present:
        return shares
    smallest = min(present)
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return [s if s > 0 else fill for s in shares]


def jensenshannon(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Jensen–Shannon distance (natural log) between the value or bin shares."""
    from scipy.spatial import distance

    if not ref.count or not cur.count:
        return math.nan
    p, q = _shares(ref, cur, fill=False)
    return float(distance.jensenshannon(p, q))


def psi(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Population stability index over the value or bin shares (empty ones filled)."""
    if not ref.count or not cur.count:
        return math.nan
    p, q = _shares(ref, cur, fill=True)
    return float(sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True)))


def chisquare_p_value(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Pearson's chi-squared test of the current counts against the reference's shares; a
    value never seen in the reference makes the p-value 0."""
    from scipy import stats

    if not ref.count or not cur.count:
        return math.nan
    _keys, a, b = _aligned(ref, cur)
    total_a, total_b = sum(a), sum(b)
    if not total_a or not total_b:
        return math.nan
    expected = [x * total_b / total_a for x in a]
    if any(e == 0 and o > 0 for e, o in zip(expected, b, strict=True)):
        return 0.0
    pairs = [(o, e) for o, e in zip(b, expected, strict=True) if e > 0]
    if len(pairs) < 2:
        return 1.0
    observed, expect = zip(*pairs, strict=True)
    return float(stats.chisquare(observed, expect).pvalue)


def z_p_value(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Two-proportion Z-test on the share of the reference's most common value."""
    from scipy import stats

    if not ref.count or not cur.count:
        return math.nan
    keys, a, b = _aligned(ref, cur)
    if len(keys) == 1:
        return 1.0
    top = max(range(len(keys)), key=lambda i: (a[i], keys[i]))
    n1, n2 = sum(a), sum(b)
    p1, p2 = 1 - a[top] / n1, 1 - b[top] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    z = (p1 - p2) / spread
    return float(2 * (1 - stats.norm.cdf(abs(z))))


TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", "K-S p-value", (NUMBER,), True, 0.05, ks_p_value, at_threshold=True),
        StatTest("chisquare", "chi-square p-value", (NUMBER, "category"), True, 0.05,
                 chisquare_p_value),
        StatTest("z", "Z-test p-value", (NUMBER, "category"), True, 0.05, z_p_value),
        StatTest("wasserstein", "Wasserstein distance (normed)", (NUMBER,), False, 0.1,
                 wasserstein_norm),
        StatTest("jensenshannon", "Jensen-Shannon distance", (NUMBER, "category"), False, 0.1,
                 jensenshannon),
        StatTest("psi", "PSI", (NUMBER, "category"), False, 0.1, psi),
    )
}  # fmt: skip


def auto_test(ref: ColumnProfile, cur: ColumnProfile, small_reference_rows: int) -> str:
    """Evidently's default test for a column: by the reference's size, the column's kind and
    how many distinct values the two columns have together."""
    distinct = _distinct_together(ref, cur)
    few = distinct is not None and distinct <= 5
    if ref.count <= small_reference_rows:  # values present, as Evidently counts them
        if ref.kind == NUMBER and not few:
            return "ks"
        return "z" if distinct is not None and distinct <= 2 else "chisquare"
    if ref.kind == NUMBER and not few:
        return "wasserstein"
    return "jensenshannon"


def _distinct_together(ref: ColumnProfile, cur: ColumnProfile) -> int | None:
    a, b = ref.frequencies(), cur.frequencies()
    if a is None or b is None:
        return None
    return len(a.keys() | b.keys())
