"""mlopen's ``plotter`` on keel: the plotly helpers control files call for ``preds["graphs"]``.

``pie_plot_from_lists`` returns the HTML ``<div>`` of ``plotly.offline.plot`` as mlopen's did
(keel reads the figure out of it); the ``plotlify_*_js`` helpers return figure dicts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pie_plot_from_lists", "plotlify_pie_js", "plotlify_scatter_js"]


def pie_plot_from_lists(
    labels: list[Any] | None = None, values: list[Any] | None = None, title: str | None = None
) -> str:
    """A pie chart of ``values`` named by ``labels``, as an HTML ``<div>`` (no plotly.js)."""
    import plotly.express as px
    import plotly.offline as opy

    fig = px.pie(values=values, names=labels, title=title)
    return str(opy.plot(fig, auto_open=False, output_type="div", include_plotlyjs=False))


def _figure(description: str) -> dict[str, Any]:
    return {
        "data": [],
        "layout": {
            "paper_bgcolor": "rgba(243, 243, 243, 1)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "title": {"text": description},
        },
    }


def plotlify_pie_js(xy: dict[Any, Any] | None = None, description: str = "") -> dict[str, Any]:
    """A pie chart figure dict of ``xy`` (label → value)."""
    figure = _figure(description)
    items = list((xy or {}).items())
    figure["data"].append(
        {"values": [v for _, v in items], "labels": [str(k) for k, _ in items], "type": "pie"}
    )
    return figure


def plotlify_scatter_js(
    xy: dict[Any, Any] | None = None,
    x: list[Any] | None = None,
    y: list[Any] | None = None,
    xtag: str | None = None,
    ytag: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A scatter figure dict: ``xy`` (y → x, as mlopen drew it) or ``x`` and ``y``."""
    figure = _figure(description)
    if xy:
        items = list(xy.items())
        figure["data"].append(
            {"x": [v for _, v in items], "y": [k for k, _ in items], "type": "scatter"}
        )
    elif x and y:
        figure["data"].append({"x": x, "y": y, "type": "scatter"})
    if xtag:
        figure["layout"]["xaxis"] = {"title": {"text": xtag}}
    if ytag:
        figure["layout"]["yaxis"] = {"title": {"text": ytag}}
    return figure
