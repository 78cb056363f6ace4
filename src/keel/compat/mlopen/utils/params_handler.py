"""mlopen's ``params_handler`` on keel: what a ``get_params`` declaration means.

mlopen built a Django form from it; keel's server builds its form and API schema from the
same declaration (:mod:`keel.server.pipelines.params`). Here: which declared parameters are
files, so keel hands them to the pipeline as file objects, as it does the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FILE_TYPES", "file_params", "param_type"]

#: mlopen's types whose value is one of the server's files (``file``: a chosen input file,
#: ``upload``: a file uploaded with the form)
FILE_TYPES = frozenset({"file", "upload", "input"})


def param_type(spec: Any) -> str:
    """The declared type of one parameter (``"k": ("integer", {...})``, ``"data": "file"``,
    or a field dict ``{"name": …, "type": …}``)."""
    if isinstance(spec, str):
        return spec.lower()
    if isinstance(spec, list | tuple):
        return str(spec[0]).lower() if spec else "string"
    if isinstance(spec, Mapping):
        return str(spec.get("type", "string")).lower()
    return "string"


def file_params(declared: Any) -> set[str]:
    """The names of the file parameters in what ``get_params`` returned."""
    if isinstance(declared, Mapping):
        return {str(k) for k, v in declared.items() if param_type(v) in FILE_TYPES}
    if isinstance(declared, list):
        return {
            str(entry["name"])
            for entry in declared
            if isinstance(entry, Mapping) and entry.get("name") and param_type(entry) in FILE_TYPES
        }
    return set()
