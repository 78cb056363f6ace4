"""Server-side downsampling of long metric histories for the UI's charts.

A browser drawing 100,000 points per line is slow and the picture is no better than one of
a thousand: the screen has fewer pixels than that. This module owns the reduction, done
with numpy on the server so a chart's JSON stays small: the points are cut into equal
buckets and each bucket keeps its lowest and its highest value (in step order), plus the
very first and last points. Unlike an average, min/max keeps spikes and divergences
visible, which is what people look for in a loss curve.
"""

from __future__ import annotations

import numpy as np

#: the most points one line of a chart carries
MAX_POINTS = 1000


def downsample_indices(values: np.ndarray, cap: int = MAX_POINTS) -> np.ndarray:
    """Indices (ascending) of at most ``cap`` points of ``values`` that keep its shape.

    NaN never wins a bucket's min or max unless the bucket holds nothing else, so a gap in
    a series stays a gap without hiding its neighbours.
    """
    n = int(values.shape[0])
    if cap < 4:
        raise ValueError(f"cap must be at least 4, got {cap}")
    if n <= cap:
        return np.arange(n)
    interior = np.asarray(values[1:-1], dtype=float)
    m = n - 2
    buckets = (cap - 2) // 2
    size = -(-m // buckets)  # ceil: every bucket but the last is full
    rows = -(-m // size)  # so no bucket is made of padding alone
    pad = rows * size - m
    nan = np.isnan(interior)
    # padding with ±inf: argmin/argmax take the first of equal values, and padding comes last
    low = np.concatenate([np.where(nan, np.inf, interior), np.full(pad, np.inf)])
    high = np.concatenate([np.where(nan, -np.inf, interior), np.full(pad, -np.inf)])
    base = np.arange(rows) * size
    lows = base + low.reshape(rows, size).argmin(axis=1)
    highs = base + high.reshape(rows, size).argmax(axis=1)
    inner = np.sort(np.stack([lows, highs], axis=1), axis=1).ravel() + 1
    picked = np.concatenate([[0], inner, [n - 1]])
    keep = np.concatenate([[True], np.diff(picked) != 0])  # a flat bucket gives one point
    return picked[keep]


def downsample(
    x: np.ndarray, y: np.ndarray, cap: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` reduced to at most ``cap`` points by min/max per bucket of ``y``."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y differ in length ({x.shape[0]} and {y.shape[0]})")
    index = downsample_indices(y, cap)
    return x[index], y[index]


def json_numbers(values: np.ndarray) -> list[float | int | None]:
    """Plain Python numbers for JSON; NaN and ±inf (not JSON) become None: a gap in plotly."""
    if values.dtype.kind in "iu":
        return values.tolist()
    finite = np.isfinite(values)
    plain: list[float | None] = values.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            plain[i] = None
    return plain
