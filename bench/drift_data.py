"""Seeded reference and current data for the drift benchmark, with drift put in on purpose.

A reference of ``rows`` rows and a current window of ``current_rows`` rows share the same
``columns`` columns: 70% numbers (round-robin over normal, lognormal, uniform, integer counts,
few-valued ratings and flags, exponential and a two-peaked mixture) and 30% categories
(3 to 50 levels, uneven shares). Each column is, by a fixed pattern over its index:

* ``clear``: drifted well past the default thresholds (a mean shift of 0.5-1.0 standard
  deviation, a 1.6x spread, a category mix with Jensen-Shannon distance 0.3);
* ``slight``: drifted *near* the threshold (normalised Wasserstein distance or Jensen-Shannon
  distance 0.06-0.14 against a threshold of 0.1), where a sketch and an exact computation
  may rightly disagree;
* ``none``: the same distribution, sampled again.

The designed drift of a ``slight`` column is set analytically (a location shift of ``d``
standard deviations moves the normalised Wasserstein distance by ``d``; a category mix is
bisected to its Jensen-Shannon distance), so the report can show how far from the threshold
each disagreement lies. Every ninth float column and every ninth category column has 2%
missing values in both sets.

Everything is drawn from ``numpy.random.default_rng([seed, column])``, vectorised, and written
with pyarrow (no pandas), so the keel side and the Evidently side (another venv) read the same
parquet files. :func:`write` also writes ``spec.json``: the column types both tools are given
and the drift each column was made with.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

NUMERIC_FAMILIES = ("normal", "lognormal", "uniform", "counts", "few", "exponential", "mixture")
#: drift of column i (numbers and categories counted apart): 2 clear, 2 slight, 6 unchanged
PATTERN = ("clear", "none", "none", "slight", "none", "clear", "none", "slight", "none", "none")
#: the designed statistic of successive ``slight`` columns (thresholds are 0.1)
SLIGHT = (0.06, 0.08, 0.09, 0.095, 0.105, 0.11, 0.12, 0.14)
#: levels of successive category columns, and distinct values of successive ``few`` columns
LEVELS = (3, 5, 8, 12, 20, 50, 4, 30, 6, 15)
FEW_VALUES = (2, 3, 5, 7, 10, 4, 20, 2, 5, 12)
CLEAR_JS = 0.3
MISSING_EVERY = 9
MISSING_SHARE = 0.02
NUMERIC_SHARE = 0.7


@dataclass(frozen=True)
class ColumnSpec:
    """One generated column and the drift it was made with.

    Attributes:
        name: the column's name (``n03_counts``, ``c07_k20``).
        kind: ``number`` or ``category`` (what both tools are told).
        family: how its values are drawn.
        drift: ``clear``, ``slight`` or ``none``.
        statistic: the designed drift: normalised Wasserstein distance for numbers with more
            than 5 values, Jensen-Shannon distance for categories and numbers with at most 5
            (the tests both tools pick by default for a reference of over 1,000 rows), of the
            distributions drawn from (the samples add noise); 0 for ``none``; for a
            ``clear`` spread change, about.
        how: what was changed, in words.
    """

    name: str
    kind: str
    family: str
    drift: str
    statistic: float
    how: str


def column_plan(columns: int) -> list[tuple[str, str, str, int]]:
    """(name, kind, family, index within its kind) of each of ``columns`` columns."""
    if columns < 2:
        raise ValueError("the drift data needs at least 2 columns (a number and a category)")
    numeric = min(columns - 1, max(1, round(columns * NUMERIC_SHARE)))
    plan = [
        (f"n{i:02d}_{NUMERIC_FAMILIES[i % len(NUMERIC_FAMILIES)]}", "number",
         NUMERIC_FAMILIES[i % len(NUMERIC_FAMILIES)], i)
        for i in range(numeric)
    ]  # fmt: skip
    plan += [
        (f"c{j:02d}_k{LEVELS[j % len(LEVELS)]}", "category", "levels", j)
        for j in range(columns - numeric)
    ]
    return plan


def _js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log (scipy's ``jensenshannon`` with base None)."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, (kl_p + kl_q) / 2)))


def _w1_norm(values: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Wasserstein distance between two distributions on sorted ``values``, over p's std."""
    mean = float((values * p).sum())
    std = math.sqrt(float(((values - mean) ** 2 * p).sum()))
    gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    return float((gap * np.diff(values)).sum()) / max(std, 0.001)


def _mix_to(p: np.ndarray, r: np.ndarray, target: float, distance: Any) -> np.ndarray:
    """(1 - w) p + w r with ``distance(p, mix) == target`` (bisection on w; w = 1 if the
    target is out of reach)."""
    lo, hi = 0.0, 1.0
    if distance(p, r) <= target:
        return r
    for _ in range(60):
        mid = (lo + hi) / 2
        if distance(p, (1 - mid) * p + mid * r) < target:
            lo = mid
        else:
            hi = mid
    w = (lo + hi) / 2
    return (1 - w) * p + w * r


def _away(p: np.ndarray) -> np.ndarray:
    """A distribution on the same values: all on the value ``p`` makes rarest."""
    r = np.zeros_like(p)
    r[int(np.argmin(p))] = 1.0
    return r


def _numeric(
    family: str, index: int, drift: str, magnitude: float, rng: np.random.Generator,
    rows: int, current_rows: int,
) -> tuple[np.ndarray, np.ndarray, float, str]:  # fmt: skip
    """(reference, current, designed statistic, how) of one number column."""

    def both(draw: Any, draw_current: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return draw(rows), (draw_current or draw)(current_rows)

    # clear drifts alternate between a location shift and a wider spread
    clear_shift = 0.5 + 0.5 * ((index * 7) % 11) / 10  # 0.5 .. 1.0 std
    spread = drift == "clear" and index % 2 == 1
    shift = {"none": 0.0, "slight": magnitude, "clear": 0.0 if spread else clear_shift}[drift]
    scale = 1.6 if spread else 1.0
    how = (
        "unchanged"
        if drift == "none"
        else f"spread x{scale}"
        if spread
        else f"mean shifted by {shift:g} std"
    )
    # a spread change x s moves W1 by (s - 1) E|X - centre|: about 0.5 std for these shapes
    designed = shift if not spread else 0.5
    if family == "normal":
        mu, sigma = round(float(rng.uniform(-10, 10)), 1), round(float(rng.uniform(0.5, 5)), 2)
        ref, cur = both(
            lambda n: rng.normal(mu, sigma, n),
            lambda n: rng.normal(mu + shift * sigma, sigma * scale, n),
        )
    elif family == "lognormal":
        m, s = float(rng.uniform(0, 2)), float(rng.uniform(0.3, 0.9))
        std = math.sqrt((math.exp(s * s) - 1) * math.exp(2 * m + s * s))
        ref, cur = both(
            lambda n: rng.lognormal(m, s, n),
            lambda n: np.exp(m) + (rng.lognormal(m, s, n) - np.exp(m)) * scale + shift * std,
        )
    elif family == "uniform":
        a, w = float(rng.uniform(-100, 100)), float(rng.uniform(1, 50))
        std = w / math.sqrt(12)
        centre = a + w / 2
        ref, cur = both(
            lambda n: rng.uniform(a, a + w, n),
            lambda n: centre + (rng.uniform(a, a + w, n) - centre) * scale + shift * std,
        )
    elif family == "counts":
        lam = round(float(rng.uniform(2, 40)), 1)
        # Poisson means lam and lam' are W1 = |lam' - lam| apart; the std is sqrt(lam)
        cur_lam = lam + (shift if not spread else 0.8) * math.sqrt(lam)
        ref, cur = both(lambda n: rng.poisson(lam, n), lambda n: rng.poisson(cur_lam, n))
        how = "unchanged" if drift == "none" else f"Poisson mean {lam:g} -> {cur_lam:.2f}"
        designed = abs(cur_lam - lam) / math.sqrt(lam)
    elif family == "few":
        k = FEW_VALUES[(index // len(NUMERIC_FAMILIES)) % len(FEW_VALUES)]
        values = np.arange(1, k + 1, dtype=float)
        p = rng.dirichlet(np.full(k, 3.0))
        if k <= 5:  # tested by Jensen-Shannon distance: mix the shares to the target
            target = {"none": 0.0, "slight": magnitude, "clear": CLEAR_JS}[drift]
            q = _mix_to(p, _away(p), target, _js) if target else p
            designed = _js(p, q)
        else:  # tested by Wasserstein distance: mix towards the top values
            r = np.zeros(k)
            r[-2:] = 0.5
            target = {"none": 0.0, "slight": magnitude, "clear": 0.6}[drift]
            q = _mix_to(p, r, target, lambda a, b: _w1_norm(values, a, b)) if target else p
            designed = _w1_norm(values, p, q)
        as_int = index % 2 == 0  # ratings as integers and as floats
        dtype = np.int64 if as_int else float
        ref, cur = both(
            lambda n: rng.choice(values, n, p=p).astype(dtype),
            lambda n: rng.choice(values, n, p=q / q.sum()).astype(dtype),
        )
        how = "unchanged" if drift == "none" else f"{k} values, shares mixed"
    elif family == "exponential":
        beta = round(float(rng.uniform(0.5, 10)), 2)
        ref, cur = both(
            lambda n: rng.exponential(beta, n),
            lambda n: rng.exponential(beta, n) * scale + shift * beta,
        )
    elif family == "mixture":
        factor = round(float(rng.uniform(1, 20)), 1)

        def mixture(n: int) -> np.ndarray:
            peak = rng.random(n) < 0.4
            return factor * np.where(peak, rng.normal(4, 0.7, n), rng.normal(0, 1, n))

        std = factor * math.sqrt(0.6 * 1 + 0.4 * 0.49 + 0.24 * 16)  # within + between peaks
        mean = factor * 1.6
        ref, cur = both(mixture, lambda n: mean + (mixture(n) - mean) * scale + shift * std)
    else:
        raise ValueError(f"unknown family {family!r}")
    return ref, cur, (0.0 if drift == "none" else designed), how


def _category(
    index: int, drift: str, magnitude: float, rng: np.random.Generator, rows: int,
    current_rows: int,
) -> tuple[np.ndarray, np.ndarray, list[str], float, str]:  # fmt: skip
    """(reference codes, current codes, level names, designed JS distance, how)."""
    k = LEVELS[index % len(LEVELS)]
    # uneven shares: a few common levels and a tail of rare ones
    p = rng.dirichlet(np.full(k, 0.8))
    p = np.maximum(p, 1e-4)
    p /= p.sum()
    target = {"none": 0.0, "slight": magnitude, "clear": CLEAR_JS}[drift]
    q = _mix_to(p, _away(p), target, _js) if target else p
    levels = [f"v{i:02d}" for i in range(k)]
    ref = rng.choice(k, rows, p=p)
    cur = rng.choice(k, current_rows, p=q / q.sum())
    how = "unchanged" if drift == "none" else f"mix of {k} levels changed"
    return ref, cur, levels, _js(p, q), how


def _strings(codes: np.ndarray, levels: list[str], rng: np.random.Generator, missing: bool) -> Any:
    """The levels of ``codes`` as an arrow string array (built as a dictionary array and cast:
    no Python string per row)."""
    import pyarrow as pa

    mask = rng.random(len(codes)) < MISSING_SHARE if missing else None
    indices = pa.array(codes.astype(np.int32), mask=mask)
    dictionary = pa.array(levels, pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def generate(
    rows: int, current_rows: int, columns: int, seed: int
) -> tuple[Any, Any, list[ColumnSpec]]:
    """(reference table, current table, column specs) as pyarrow tables."""
    import pyarrow as pa

    ref_cols: dict[str, Any] = {}
    cur_cols: dict[str, Any] = {}
    specs: list[ColumnSpec] = []
    slight = {"number": 0, "category": 0}
    for number, (name, kind, family, index) in enumerate(column_plan(columns)):
        rng = np.random.default_rng([seed, number])
        drift = PATTERN[index % len(PATTERN)]
        magnitude = 0.0
        if drift == "slight":
            magnitude = SLIGHT[slight[kind] % len(SLIGHT)]
            slight[kind] += 1
        missing = index % MISSING_EVERY == MISSING_EVERY - 1
        if kind == "number":
            ref, cur, designed, how = _numeric(
                family, index, drift, magnitude, rng, rows, current_rows
            )
            if missing and ref.dtype.kind == "f":
                ref[rng.random(rows) < MISSING_SHARE] = np.nan
                cur[rng.random(current_rows) < MISSING_SHARE] = np.nan
            else:
                missing = False
            ref_cols[name], cur_cols[name] = pa.array(ref), pa.array(cur)
        else:
            ref_codes, cur_codes, levels, designed, how = _category(
                index, drift, magnitude, rng, rows, current_rows
            )
            ref_cols[name] = _strings(ref_codes, levels, rng, missing)
            cur_cols[name] = _strings(cur_codes, levels, rng, missing)
        if missing:
            how += f", {MISSING_SHARE:.0%} missing"
        specs.append(ColumnSpec(name, kind, family, drift, round(designed, 4), how))
    return pa.table(ref_cols), pa.table(cur_cols), specs


def write(
    folder: Path, rows: int, current_rows: int, columns: int, seed: int
) -> tuple[Path, Path, Path]:
    """Write ``reference.parquet``, ``current.parquet`` and ``spec.json`` into ``folder``."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    reference, current, specs = generate(rows, current_rows, columns, seed)
    paths = folder / "reference.parquet", folder / "current.parquet", folder / "spec.json"
    pq.write_table(reference, paths[0])
    pq.write_table(current, paths[1])
    paths[2].write_text(
        json.dumps(
            {
                "seed": seed,
                "reference_rows": rows,
                "current_rows": current_rows,
                "numerical": [s.name for s in specs if s.kind == "number"],
                "categorical": [s.name for s in specs if s.kind == "category"],
                "columns": [asdict(s) for s in specs],
            },
            indent=1,
        )
    )
    return paths


def read_spec(path: Path) -> tuple[dict[str, Any], list[ColumnSpec]]:
    data = json.loads(path.read_text())
    return data, [ColumnSpec(**c) for c in data["columns"]]
