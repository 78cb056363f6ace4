"""A pipeline run's results (mlopen's ``preds``), stored on its run and read back for pages.

::

    results/preds.json            summary: columns, row count, graph count, text kind, notes
    results/table.parquet         preds["data"] with preds["columns"] (row groups of 1,000)
    results/graphs/<n>.json       each plotly figure as {"data": [...], "layout": {...}}
    results/text.html             preds["text"] as the pipeline returned it
    results/imgs.json             preds["imgs"] (forks' images) as data: URIs
    results/extra.json            any other key of preds, as JSON, shown under its name

The table is read a page at a time (only the row groups a page needs). Text is stored as
given and sanitised when shown (:func:`safe_html`): what is allowed can change without
rewriting old runs. A graph given as the HTML ``<div>`` of ``plotly.offline.plot`` (mlopen's
advice) is stored as the figure inside it; its script is never served.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from keel.tracking.client import Client
    from keel.tracking.handles import RunApi

RESULTS = "results"
SUMMARY = f"{RESULTS}/preds.json"
TABLE = f"{RESULTS}/table.parquet"
TEXT = f"{RESULTS}/text.html"
IMAGES = f"{RESULTS}/imgs.json"
EXTRA = f"{RESULTS}/extra.json"
ROW_GROUP = 1000


def graph_path(n: int) -> str:
    return f"{RESULTS}/graphs/{n}.json"


@dataclass
class ResultSummary:
    """What a run's results hold."""

    columns: list[str] = field(default_factory=list)
    rows: int = 0
    graphs: int = 0
    text: str | None = None  # "html", "plain" or None (no text)
    notes: list[str] = field(default_factory=list)
    imgs: int = 0
    extra: list[str] = field(default_factory=list)  # the other keys of preds, in order

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- storing


def store_results(run: RunApi, preds: dict[str, Any]) -> ResultSummary:
    """Write ``preds`` (plain JSON, as the mlopen adapter returns it) onto ``run``."""
    summary = ResultSummary()
    with tempfile.TemporaryDirectory(prefix="keel-results-") as tmp:
        folder = Path(tmp) / RESULTS
        (folder / "graphs").mkdir(parents=True)
        if preds.get("data") is not None:
            summary.columns, summary.rows = _write_table(
                preds["data"], preds.get("columns"), folder / "table.parquet"
            )
        elif preds.get("columns"):
            summary.notes.append("preds has columns but no data: no table")
        for n, graph in enumerate(preds.get("graphs") or [], start=1):
            figure = figure_of(graph)
            if figure is None:
                summary.notes.append(
                    f"graph {n} is not a plotly figure keel can read: "
                    "return the figure (or fig.to_dict())"
                )
                continue
            path = folder / "graphs" / f"{summary.graphs}.json"
            path.write_text(json.dumps(figure, default=str), encoding="utf-8")
            summary.graphs += 1
        text = preds.get("text")
        if text is not None and text != "":
            if not isinstance(text, str):
                text = json.dumps(text, indent=2, default=str)
                summary.text = "plain"
            else:
                summary.text = "html" if _looks_like_html(text) else "plain"
            (folder / "text.html").write_text(text, encoding="utf-8")
        images = [i for i in preds.get("imgs") or [] if _is_image_uri(i)]
        if len(images) < len(preds.get("imgs") or []):
            summary.notes.append("an image that is not a data:image/… URI was left out")
        if images:
            (folder / "imgs.json").write_text(json.dumps(images), encoding="utf-8")
            summary.imgs = len(images)
        extra = preds.get("extra") or {}
        if isinstance(extra, dict) and extra:
            (folder / "extra.json").write_text(json.dumps(extra, default=str), encoding="utf-8")
            summary.extra = [str(k) for k in extra]
        (folder / "preds.json").write_text(json.dumps(summary.to_json()), encoding="utf-8")
        run.log_artifact(folder, RESULTS)
    return summary


def _write_table(rows: Any, columns: Any, path: Path) -> tuple[list[str], int]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [list(r) if isinstance(r, list | tuple) else [r] for r in rows]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise InvalidInput(
            f"preds['data'] rows have different lengths ({', '.join(map(str, sorted(widths)))})"
        )
    width = widths.pop() if widths else len(columns or [])
    names = [str(c) for c in columns] if columns else [f"column {i + 1}" for i in range(width)]
    if rows and len(names) != width:
        raise InvalidInput(
            f"preds['columns'] names {len(names)} columns but the rows of preds['data'] "
            f"have {width}"
        )
    names = _unique(names)
    frame = pd.DataFrame(rows, columns=names)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Columns mixing types (numbers and text) are kept as text.
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    return names, len(rows)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        out.append(name)
    return out


def figure_of(graph: Any) -> dict[str, Any] | None:
    """A plotly figure as ``{"data", "layout"}`` (None when ``graph`` is not one)."""
    if isinstance(graph, str):
        return _figure_from_html(graph)
    if isinstance(graph, dict) and isinstance(graph.get("data"), list):
        return {"data": graph["data"], "layout": graph.get("layout") or {}}
    return None


def _figure_from_html(html: str) -> dict[str, Any] | None:
    """The figure in the ``<div>`` that ``plotly.offline.plot(output_type="div")`` makes:
    the arguments of its ``Plotly.newPlot(id, data, layout, config)`` call, read as JSON."""
    start = html.find("Plotly.newPlot(")
    if start < 0:
        return None
    decoder = json.JSONDecoder()
    pos = start + len("Plotly.newPlot(")
    values = []
    try:
        for _ in range(3):
            while html[pos].isspace():
                pos += 1
            value, pos = decoder.raw_decode(html, pos)
            values.append(value)
            while html[pos].isspace():
                pos += 1
            if html[pos] == ",":
                pos += 1
    except (ValueError, IndexError):
        return None
    _, data, layout = values
    if not isinstance(data, list) or not isinstance(layout, dict):
        return None
    return {"data": data, "layout": layout}


def _is_image_uri(value: Any) -> bool:
    """A ``data:`` URI of a raster image (SVG is left out: it may carry scripts)."""
    return (
        isinstance(value, str)
        and value.startswith("data:image/")
        and not value.startswith("data:image/svg")
        and ";base64," in value[:40]
    )


def _looks_like_html(text: str) -> bool:
    return "<" in text and ">" in text


# --------------------------------------------------------------------------- reading


def read_summary(client: Client, run_id: str) -> ResultSummary | None:
    """The results summary of a run (None if the run stored no results)."""
    try:
        path = client.get_run_artifact(run_id, SUMMARY)
    except NotFound:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    known = set(ResultSummary.__dataclass_fields__)
    return ResultSummary(**{k: v for k, v in data.items() if k in known})


@dataclass
class TablePage:
    columns: list[str]
    rows: list[list[Any]]
    total: int
    offset: int
    limit: int

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.limit)) if self.limit else 1


def read_table(client: Client, run_id: str, offset: int = 0, limit: int = 50) -> TablePage:
    """Rows ``offset`` to ``offset + limit`` of the run's table (reads only their row groups)."""
    import pyarrow.parquet as pq

    if offset < 0 or limit < 1:
        raise InvalidInput("offset must be ≥ 0 and limit ≥ 1")
    path = client.get_run_artifact(run_id, TABLE)
    handle = pq.ParquetFile(path)
    columns = list(handle.schema_arrow.names)
    total = handle.metadata.num_rows
    end = min(total, offset + limit)
    rows: list[list[Any]] = []
    base = 0
    for group in range(handle.num_row_groups):
        count = handle.metadata.row_group(group).num_rows
        if base + count > offset and base < end:
            first = max(0, offset - base)
            part = handle.read_row_group(group).slice(first, min(count, end - base) - first)
            values = part.to_pydict()
            rows.extend([list(r) for r in zip(*(values[c] for c in columns), strict=True)])
        base += count
        if base >= end:
            break
    return TablePage(columns, [[_plain(v) for v in r] for r in rows], total, offset, limit)


def _plain(value: Any) -> Any:
    """A cell as JSON can carry it (NaN and infinities as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def read_graphs(client: Client, run_id: str, count: int) -> list[dict[str, Any]]:
    graphs = []
    for n in range(count):
        path = client.get_run_artifact(run_id, graph_path(n))
        graphs.append(json.loads(Path(path).read_text(encoding="utf-8")))
    return graphs


def read_text(client: Client, run_id: str) -> str | None:
    try:
        path = client.get_run_artifact(run_id, TEXT)
    except NotFound:
        return None
    return Path(path).read_text(encoding="utf-8")


def read_images(client: Client, run_id: str) -> list[str]:
    """The run's images (``preds["imgs"]``) as ``data:image/…`` URIs."""
    try:
        path = client.get_run_artifact(run_id, IMAGES)
    except NotFound:
        return []
    images = json.loads(Path(path).read_text(encoding="utf-8"))
    return [i for i in images if _is_image_uri(i)]


def read_extra(client: Client, run_id: str) -> dict[str, Any]:
    """The other keys of the run's ``preds`` (forks' additions), as JSON."""
    try:
        path = client.get_run_artifact(run_id, EXTRA)
    except NotFound:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def safe_html(text: str) -> str:
    """``text`` (HTML from a pipeline) with only harmless tags and attributes left: no
    scripts, styles, event handlers or ``javascript:`` links (nh3's allow-list)."""
    import nh3

    return nh3.clean(text, link_rel="noopener noreferrer nofollow")
