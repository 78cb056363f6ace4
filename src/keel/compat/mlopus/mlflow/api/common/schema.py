"""``mlopus.mlflow.api.common.schema``: run status and the entity records.

The records have mlopus' fields (``run.exp``, ``mv.model``, ``mv.run``, ``mv.version`` as a
string, times as local datetimes) and are filled from keel's entities by
:mod:`keel.compat.mlopus.mlflow.api.base`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(Enum):
    """Run status values (keel's ``killed`` is ``KILLED``, which mlopus does not have)."""

    FAILED = "FAILED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    SCHEDULED = "SCHEDULED"
    KILLED = "KILLED"


class BaseEntity(BaseModel):
    """An entity record that also reads as a mapping (``dict(entity)``, ``**entity``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=False)

    tags: builtins.dict[str, Any] = Field(default_factory=builtins.dict, repr=False)

    def keys(self) -> list[str]:
        return list(type(self).model_fields)

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(self.keys())

    def dict(self, **kwargs: Any) -> builtins.dict[str, Any]:  # type: ignore[override]
        """The record as plain data (mlopus' pydantic v1 name of ``model_dump``)."""
        return self.model_dump(**kwargs)


class Experiment(BaseEntity):
    """An experiment."""

    id: str
    name: str


class Run(BaseEntity):
    """A run: ``exp`` is its experiment; ``repo`` the artifact store it logs to."""

    id: str
    name: str
    exp: Experiment = Field(repr=False)
    repo: str = Field(repr=False)
    params: builtins.dict[str, Any] = Field(default_factory=builtins.dict, repr=False)
    metrics: builtins.dict[str, Any] = Field(default_factory=builtins.dict, repr=False)
    status: RunStatus | None = Field(default=None, repr=False)
    end_time: datetime | None = Field(default=None, repr=False)
    start_time: datetime | None = Field(default=None, repr=False)


class Model(BaseEntity):
    """A registered model."""

    name: str


class ModelVersion(BaseEntity):
    """A model version: its number (a string, as in mlopus), model, source run and path."""

    version: str
    model: Model
    run: Run = Field(repr=False)
    path_in_run: str = Field(repr=False)
