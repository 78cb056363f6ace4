"""mlopen's ``data_handler`` on keel: small helpers for control files.

``read_from_file`` (which mlopen's sentiment pipeline calls) reads a CSV input (a file
object, a path, or text lines) into a DataFrame.
"""

from __future__ import annotations

from typing import Any

__all__ = ["list_to_js_obj", "read_from_file"]


def list_to_js_obj(lst: list[Any]) -> list[dict[str, Any]]:
    """``[{"name": item}, …]`` for each item."""
    return [{"name": item} for item in lst]


def read_from_file(file: Any, **read_csv: Any) -> Any:
    """A DataFrame of the CSV in ``file`` (a pipeline's input file or a path)."""
    import pandas as pd

    return pd.read_csv(file, **read_csv)
