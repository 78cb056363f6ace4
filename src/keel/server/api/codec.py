"""How the REST API answers: records as JSON (through :mod:`keel.store.codec`), the
response class that keeps NaN metrics, and the OpenAPI descriptions of those answers.

Routes return :func:`reply` rather than letting FastAPI serialise: its encoder and Starlette's
``JSONResponse`` both refuse (or drop) NaN, and metric histories can be long enough for the
extra pass over every value to show.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response

from keel.store.codec import dumps, encode, encode_number

if TYPE_CHECKING:
    from keel.store.base import MetricArrays

_NUMBER_OR_WORD = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}


class KeelJSON(JSONResponse):
    """JSON written by :func:`keel.store.codec.dumps` (compact, NaN-tolerant in user values)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def reply(value: Any, status: int = 200) -> KeelJSON:
    """An answer: a record, a list of records, or plain JSON values."""
    first = value[0] if isinstance(value, list) and value else value
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        value = encode(value)
    return KeelJSON(value, status_code=status)


def metric_points(key: str, history: MetricArrays) -> Response:
    """A metric's history as the list of ``Metric`` records :func:`reply` would send.

    Built from the store's arrays and written by orjson: a 1,000,000-point history took
    ~10 s as one ``Metric`` per point through the record encoder, ~1 s this way.
    """
    import numpy as np
    import orjson

    values: list[Any] = history.values.tolist()
    if not np.isfinite(history.values).all():
        values = [encode_number(v) for v in values]
    points = [
        {"key": key, "value": v, "step": s, "timestamp": t}
        for v, s, t in zip(values, history.steps.tolist(), history.timestamps.tolist(), strict=True)
    ]
    return Response(orjson.dumps(points), media_type="application/json")


def no_content() -> Response:
    """204: done, nothing to say."""
    return Response(status_code=204)


@cache
def schema_of(kind: type) -> dict[str, Any]:
    """The JSON schema of a record as the API sends it (metric numbers may be words)."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(kind).json_schema()
    props = schema.get("properties", {})
    if "metrics" in props:
        props["metrics"] = {**props["metrics"], "additionalProperties": _NUMBER_OR_WORD}
    if "value" in props and kind.__name__ == "Metric":
        props["value"] = {**_NUMBER_OR_WORD, "title": "Value"}
    return schema


def returns(
    kind: type | None = None,
    *,
    many: bool = False,
    status: int = 200,
    description: str = "",
    schema: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering ``kind`` (or ``schema``), for ``/docs``."""
    if schema is None and kind is not None:
        schema = schema_of(kind)
        if many:
            schema = {"type": "array", "items": schema}
    body = {"content": {"application/json": {"schema": schema}}} if schema is not None else {}
    what = description or (
        f"{'a list of ' if many else 'the '}{kind.__name__}{'s' if many else ''}"
        if kind is not None
        else "done"
    )
    return {status: {"description": what, **body}}
