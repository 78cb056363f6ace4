"""Plotly figures of metric histories, as plain dicts the page hands to ``Plotly.newPlot``.

The figure is built here as JSON-ready data (no plotly import on the server: the Python
package is only the source of ``plotly.min.js``). Every line is downsampled first
(:mod:`keel.server.ui.downsample`), so a chart never carries more than ``MAX_POINTS``
points per run however long the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.server.ui.downsample import MAX_POINTS, downsample_indices, json_numbers
from keel.server.ui.series import Series


@dataclass(frozen=True)
class Line:
    """One run's series in a chart, named as the legend shows it."""

    name: str
    series: Series


def metric_figure(key: str, lines: Sequence[Line], cap: int = MAX_POINTS) -> dict[str, Any]:
    """A line chart of metric ``key`` with one trace per line, each at most ``cap`` points.

    The x axis is the step, or the time of logging when no line has distinct steps. When
    every line is a single value (a final score of each compared run), it is a bar chart.
    """
    if len(lines) > 1 and all(len(line.series) == 1 for line in lines):
        return _bar_figure(key, lines)
    stepped = any(line.series.stepped for line in lines if len(line.series) > 1)
    traces = []
    for line in lines:
        series = line.series
        index = downsample_indices(series.values, cap)
        x = series.steps[index] if stepped else series.timestamps[index]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if index.shape[0] < 50 else "lines",
                "name": line.name,
                "x": json_numbers(x),
                "y": json_numbers(series.values[index]),
                "meta": {"points": series.points, "shown": int(index.shape[0])},
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": key, "font": {"size": 14}},
            "margin": {"l": 50, "r": 20, "t": 36, "b": 40},
            "height": 280,
            "showlegend": len(lines) > 1,
            "xaxis": {"title": {"text": "step" if stepped else "time"}}
            | ({} if stepped else {"type": "date"}),
            "yaxis": {"automargin": True},
        },
        "config": {"responsive": True, "displaylogo": False},
    }


def _bar_figure(key: str, lines: Sequence[Line]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "bar",
                "x": [line.name for line in lines],
                "y": json_numbers(np.concatenate([line.series.values for line in lines])),
                "meta": {"points": len(lines), "shown": len(lines)},
            }
        ],
        "layout": {
            "title": {"text": key, "font": {"size": 14}},
            "margin": {"l": 50, "r": 20, "t": 36, "b": 60},
            "height": 280,
            "showlegend": False,
            "yaxis": {"automargin": True},
        },
        "config": {"responsive": True, "displaylogo": False},
    }


def points_in(figure: dict[str, Any]) -> int:
    """How many points a figure carries in all (what tests and the bench check)."""
    return sum(len(trace["y"]) for trace in figure["data"])
