"""What ``run_pipeline`` returns (mlopen's ``preds``), made plain JSON to store and show.

``data`` (rows) and ``columns`` make a table, ``graphs`` holds plotly figures (a figure, a
figure dict, or the HTML ``<div>`` of ``plotly.offline.plot(output_type="div")``; one or a
list), ``text`` is HTML or plain text. Forks add ``imgs``: images as bytes, base64 text,
``data:`` URIs, image files, PIL images or matplotlib figures; they become ``data:`` URIs.
Any other key is kept as JSON and shown under its name. A key set to None (mlopen's knn:
``preds["graphs"] = None``) or left out shows nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Sequence
from typing import Any

from keel.errors import InvalidInput

KNOWN = ("data", "columns", "graphs", "text", "imgs")
#: the largest image kept (bytes, before base64)
MAX_IMAGE_BYTES = 10 * 1024 * 1024
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),
    (b"BM", "image/bmp"),
)


def plain_preds(preds: Any) -> dict[str, Any]:
    """``preds`` as JSON: rows as lists, figures as their JSON, images as ``data:`` URIs,
    other keys under ``extra``."""
    from keel.data.helpers import to_plain_python

    if not isinstance(preds, dict):
        raise InvalidInput(
            f"run_pipeline must return the preds dict (data, columns, graphs, text), "
            f"not {type(preds).__name__}"
        )
    preds = {str(key): value for key, value in preds.items() if value is not None}
    out: dict[str, Any] = {}
    if "data" in preds:
        data = preds["data"]
        if hasattr(data, "values") and hasattr(data, "columns"):  # a DataFrame
            preds.setdefault("columns", list(data.columns))
            data = data.values.tolist()
        out["data"] = [to_plain_python(_row(row)) for row in data]
    if "columns" in preds:
        out["columns"] = [str(c) for c in preds["columns"]]
    if "graphs" in preds and preds["graphs"] != "":
        out["graphs"] = [_graph(g) for g in _as_list(preds["graphs"])]
    if "text" in preds:
        text = preds["text"]
        out["text"] = text if isinstance(text, str) else to_plain_python(text)
    if "imgs" in preds and preds["imgs"] != "":
        out["imgs"] = [image_uri(i) for i in _as_list(preds["imgs"])]
    extra = {key: to_plain_python(value) for key, value in preds.items() if key not in KNOWN}
    if extra:
        out["extra"] = json.loads(json.dumps(extra, default=str))
    return out


def _row(row: Any) -> list[Any]:
    if isinstance(row, list | tuple):
        return list(row)
    tolist = getattr(row, "tolist", None)
    return list(tolist()) if callable(tolist) else [row]


def _as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else [value]


def _graph(graph: Any) -> Any:
    if isinstance(graph, str | dict):
        return graph  # an HTML <div> from plotly.offline.plot, or a figure dict
    to_json = getattr(graph, "to_json", None)
    if callable(to_json):  # a plotly Figure
        return json.loads(to_json())
    to_dict = getattr(graph, "to_plotly_json", None)
    if callable(to_dict):
        return json.loads(json.dumps(to_dict(), default=str))
    raise InvalidInput(f"preds['graphs'] holds a {type(graph).__name__}, not a plotly figure")


def image_uri(image: Any) -> str:
    """An image as a ``data:image/…;base64,…`` URI."""
    if isinstance(image, str):
        text = image.strip()
        if text.startswith("data:image/"):
            return text
        if len(text) < 4096 and os.path.isfile(text):
            with open(text, "rb") as handle:
                return _uri(handle.read(MAX_IMAGE_BYTES + 1))
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                "preds['imgs'] holds text that is not an image (a data: URI, base64 or a file)"
            ) from None
        return _uri(raw)
    if isinstance(image, bytes | bytearray | memoryview):
        return _uri(bytes(image))
    savefig = getattr(image, "savefig", None)  # a matplotlib figure
    save = getattr(image, "save", None)  # a PIL image
    if callable(savefig) or callable(save):
        buffer = io.BytesIO()
        if callable(savefig):
            savefig(buffer, format="png")
        else:
            save(buffer, format="PNG")  # type: ignore[misc]
        return _uri(buffer.getvalue())
    raise InvalidInput(
        f"preds['imgs'] holds a {type(image).__name__}: give image bytes, base64 text, a data: "
        "URI, an image file's path, a PIL image or a matplotlib figure"
    )


def _uri(raw: bytes) -> str:
    if len(raw) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"preds['imgs'] holds an image over {MAX_IMAGE_BYTES // 2**20} MB")
    kind = next((mime for magic, mime in _SIGNATURES if raw.startswith(magic)), None)
    if kind is None and raw.lstrip()[:5] in (b"<svg ", b"<?xml"):
        kind = "image/svg+xml"
    if kind is None:
        raise InvalidInput("preds['imgs'] holds bytes that are not a PNG, JPEG, GIF, WebP or BMP")
    return f"data:{kind};base64,{base64.b64encode(raw).decode('ascii')}"
