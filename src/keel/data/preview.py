"""The first rows of a data source, for ``keel data preview`` and the web UI.

Chunked sources are read one chunk of the rows asked for, so a preview of a large table or
file costs what it shows, not the whole read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.data.base import DataSource, Params

BINARY_PREVIEW_BYTES = 64


@dataclass
class Preview:
    """What a preview shows: a table (columns with dtypes, rows) or text."""

    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        from keel.data.helpers import to_plain_python

        if self.text is not None:
            return {"title": self.title, "text": self.text}
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": to_plain_python(self.rows),
        }


def preview(source: DataSource, params: Params, rows: int) -> Preview:
    """The first ``rows`` rows (or lines) of ``source``."""
    if not source.gives_frames:
        return _raw(source, params, rows)
    if source.chunked and source.settings.expires == 0:
        chunks = source.get_dataframe(params, chunksize=rows)
        try:
            frame = next(iter(chunks), None)  # type: ignore[call-overload]
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if frame is None:
            import pandas as pd

            frame = pd.DataFrame()
    else:
        frame = source.get_dataframe(params).head(rows)  # type: ignore[union-attr]
    return Preview(
        title=f"{source.name} ({source.type}): first {len(frame)} row(s)",
        columns=[f"{name} ({dtype})" for name, dtype in frame.dtypes.items()],
        rows=frame.astype(object).where(frame.notna(), None).values.tolist(),
    )


def _raw(source: DataSource, params: Params, rows: int) -> Preview:
    data = source.get_raw(params)
    title = f"{source.name} ({source.type})"
    if isinstance(data, bytes):
        head = data[:BINARY_PREVIEW_BYTES]
        more = "…" if len(data) > BINARY_PREVIEW_BYTES else ""
        return Preview(title, text=f"{len(data)} bytes: {head!r}{more}")
    lines = data.splitlines()
    more = f"\n… ({len(lines) - rows} more lines)" if len(lines) > rows else ""
    return Preview(title, text="\n".join(lines[:rows]) + more)
