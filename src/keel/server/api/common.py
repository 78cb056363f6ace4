"""What the routers of the REST API share: the stores of the request, the parameters of
every ``find`` (a MongoDB-style query as JSON, a sort, a page) and the small request bodies
several records use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field

from keel.errors import InvalidInput
from keel.server.deps import get_client, get_settings

if TYPE_CHECKING:
    from keel.artifacts import ArtifactStore
    from keel.store.base import MetadataStore

QUERY_HELP = (
    'MongoDB-style filter as JSON, e.g. {"metrics.acc": {"$gt": 0.9}, "params.opt": "adam"}. '
    "Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $not $and $or $nor."
)
SORT_HELP = 'sort as JSON: a list of [field, 1 | -1] pairs, e.g. [["metrics.acc", -1]]'
PROJECT_HELP = "the project (namespace) of the records"

#: a required ``?project=`` (names may hold "/", so projects never sit in a path)
ProjectQuery = Annotated[str, Query(description=PROJECT_HELP)]


def metadata(request: Request) -> MetadataStore:
    """The server's metadata store."""
    return get_client(request).store


def artifacts(request: Request) -> ArtifactStore:
    """The server's artifact store (where blob bytes live)."""
    return get_client(request).artifact_store


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused, so a typo is not silently lost."""

    model_config = ConfigDict(extra="forbid")


class TagsBody(Body):
    """Tags to set (merged into the existing ones; a key given again is overwritten)."""

    tags: dict[str, Any] = Field(description="tag key → any JSON value")


@dataclass(frozen=True)
class Find:
    """The parsed parameters of a ``find``."""

    project: str | None
    query: dict[str, Any] | None
    sort: list[Any] | None
    limit: int | None
    offset: int


def find_params(
    request: Request,
    project: str | None = Query(None, description=PROJECT_HELP + " (all projects if omitted)"),
    query: str | None = Query(None, description=QUERY_HELP),
    sort: str | None = Query(None, description=SORT_HELP),
    limit: int | None = Query(None, description="at most this many records"),
    offset: int = Query(0, description="skip this many records first (paging)"),
) -> Find:
    """A find's query string, with its JSON parts parsed (the store judges their content)."""
    depth = get_settings(request).max_json_depth
    return Find(project, _json(query, "query", depth), _json(sort, "sort", depth), limit, offset)


def _json(text: str | None, what: str, max_depth: int) -> Any:
    """A JSON query parameter, nesting at most ``max_depth`` deep (a deeper one is refused
    before it is parsed: Python's parser recurses once per level)."""
    from keel.server.jsonlimits import loads_bounded

    if text is None or not text.strip():
        return None
    try:
        return loads_bounded(text, max_depth)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the {what} parameter is not valid JSON: {exc}") from None
    except InvalidInput as exc:  # too deep
        raise InvalidInput(f"the {what} parameter: {exc}") from None
