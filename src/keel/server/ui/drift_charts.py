"""Plotly figures of the drift page, as plain dicts the page hands to ``Plotly.newPlot``.

Two kinds, both built from a drift check's numbers (no plotly import on the server, as in
:mod:`keel.server.ui.charts`):

* :func:`column_figure`: one column's reference and live distributions overlaid, as shares
  so a 120-row reference and a million live rows compare: bars over the same bin edges for
  numbers, bars side by side per value for categories;
* :func:`timeline_figure`: per report window, stacked on one time axis, the drift share
  (bars, red where the window drifted, the dataset threshold as a line), the record volume,
  the error rate and the latency p50/p99, so a drift can be read against what the serving
  side saw at the same time.

Sizes are bounded by the check itself: a number column has ``bins`` bins, a category its
30 most frequent values (:func:`keel.monitoring.check.histograms_of`), a timeline at most
``keel.monitoring.check.MAX_WINDOWS`` windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring.check import WindowSummary

REFERENCE_COLOUR = "#8a96a8"  # the training data: quiet
LIVE_COLOUR = "#2457c5"  # what the server saw: keel's accent
DRIFT_COLOUR = "#b3261e"
OK_COLOUR = "#1f7a3d"
CONFIG = {"responsive": True, "displaylogo": False}


def _finite(value: Any) -> float | None:
    """A number JSON (and plotly) can take: NaN, infinities and None become gaps."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _numbers(values: Sequence[Any]) -> list[float | None]:
    return [_finite(v) for v in values]


def column_figure(title: str, histogram: Mapping[str, Any]) -> dict[str, Any]:
    """The reference's and the live values' shares of one column, overlaid.

    ``histogram`` is one entry of :func:`keel.monitoring.check.histograms_of`: ``edges``
    (numbers: ``len(reference) + 1`` bin edges shared by both sides) or ``values``
    (categories), and the ``reference`` and ``current`` shares (``current`` empty when the
    live data has no such column).
    """
    reference = _numbers(histogram.get("reference") or [])
    current = _numbers(histogram.get("current") or [])
    series = (("reference", reference, REFERENCE_COLOUR), ("live", current, LIVE_COLOUR))
    if histogram.get("kind") == "number":
        edges = [float(e) for e in histogram["edges"]]
        bins = {
            "x": [(a + b) / 2 for a, b in pairwise(edges)],
            "width": [b - a for a, b in pairwise(edges)],
            "text": [f"[{a:.4g}, {b:.4g})" for a, b in pairwise(edges)],
            "textposition": "none",
            "opacity": 0.55,
        }
        traces = [_bar(n, s, colour, "%{text}", bins) for n, s, colour in series if s]
        barmode = "overlay"
    else:
        values = {"x": [str(v) for v in histogram.get("values") or []]}
        traces = [_bar(n, s, colour, "%{x}", values) for n, s, colour in series if s]
        barmode = "group"
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}},
        "barmode": barmode,
        "bargap": 0.05 if barmode == "overlay" else 0.2,
        "margin": {"l": 50, "r": 10, "t": 34, "b": 40},
        "height": 240,
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.2},
        "yaxis": {"title": {"text": "share"}, "tickformat": ".0%", "rangemode": "tozero"},
        "xaxis": {"type": "category"} if barmode == "group" else {},
    }
    return {"data": traces, "layout": layout, "config": CONFIG}


def _line(
    windows: Sequence[WindowSummary], centres: Sequence[float], values: Sequence[Any]
) -> dict[str, list[Any]]:
    """x and y of a line through the windows, broken where windows without records lie
    between two (the check has no row for those: the line must not bridge them)."""
    x: list[Any] = []
    y: list[Any] = []
    for i, (window, centre, value) in enumerate(zip(windows, centres, values, strict=True)):
        if i and window.start_ms > windows[i - 1].end_ms:
            x.append((windows[i - 1].end_ms + window.start_ms) / 2)
            y.append(None)
        x.append(centre)
        y.append(_finite(value))
    return {"x": x, "y": y}


def timeline_figure(
    windows: Sequence[WindowSummary], window_s: int, share_threshold: float
) -> dict[str, Any]:
    """Per report window: drift share, records, error rate and latency p50/p99, in four
    panels stacked over one shared time axis (UTC). Bars span their window; the points of
    the lines sit at the middle of theirs."""
    # a bar spans its window (plotly's bar width on a date axis is in milliseconds)
    widths = [max(1, w.end_ms - w.start_ms) * 0.9 for w in windows]
    centres = [w.start_ms + (w.end_ms - w.start_ms) / 2 for w in windows]
    traces: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "drift share",
            "x": centres,
            "y": [_finite(w.drift_share) for w in windows],
            "width": widths,
            "text": [", ".join(w.drifted_features) or "none drifted" for w in windows],
            "textposition": "none",
            "hovertemplate": "%{y:.0%} of the features drifted: %{text}<extra></extra>",
            "marker": {"color": [DRIFT_COLOUR if w.drifted else OK_COLOUR for w in windows]},
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "bar",
            "name": "records",
            "x": centres,
            "y": [w.records for w in windows],
            "width": widths,
            "hovertemplate": "%{y:,} records<extra></extra>",
            "marker": {"color": LIVE_COLOUR},
            "xaxis": "x",
            "yaxis": "y2",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "error rate",
            **_line(windows, centres, [w.error_rate for w in windows]),
            "hovertemplate": "%{y:.2%} errors<extra></extra>",
            "line": {"color": DRIFT_COLOUR},
            "xaxis": "x",
            "yaxis": "y3",
        },
    ]
    for quantile, dash in (("p50", "solid"), ("p99", "dot")):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"latency {quantile}",
                **_line(windows, centres, [w.latency_ms.get(quantile) for w in windows]),
                "hovertemplate": "%{y:.1f} ms<extra>" + quantile + "</extra>",
                "line": {"color": "#5f6b7a", "dash": dash},
                "connectgaps": False,
                "xaxis": "x",
                "yaxis": "y4",
            }
        )
    if windows:  # the last window's right edge, so a single window is not a dot at the edge
        end = windows[-1].end_ms
        first = windows[0].start_ms
        span = [first, max(end, first + window_s * 1000)]
    else:
        span = None
    layout: dict[str, Any] = {
        "height": 560,
        "margin": {"l": 70, "r": 20, "t": 20, "b": 40},
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.08},
        "hovermode": "x unified",
        "bargap": 0,
        "xaxis": {"type": "date", "anchor": "y4"} | ({"range": span} if span else {}),
        "yaxis": {
            "domain": [0.79, 1.0],
            "title": {"text": "drift share"},
            "tickformat": ".0%",
            "range": [0, 1.05],
        },
        "yaxis2": {"domain": [0.53, 0.74], "title": {"text": "records"}, "rangemode": "tozero"},
        "yaxis3": {
            "domain": [0.27, 0.48],
            "title": {"text": "error rate"},
            "tickformat": ".1%",
            "rangemode": "tozero",
        },
        "yaxis4": {"domain": [0.0, 0.22], "title": {"text": "latency ms"}, "rangemode": "tozero"},
        # the dataset drifts when this share of the features drift
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": share_threshold,
                "y1": share_threshold,
                "line": {"color": DRIFT_COLOUR, "width": 1, "dash": "dash"},
            }
        ],
    }
    return {"data": traces, "layout": layout, "config": CONFIG}


def _bar(
    name: str, shares: list[float], colour: str, label: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """One bar trace of shares (the reference's or the live data's)."""
    return {
        "type": "bar",
        "name": name,
        "y": shares,
        "hovertemplate": label + ": %{y:.1%}<extra>" + name + "</extra>",
        "marker": {"color": colour},
        **extra,
    }
