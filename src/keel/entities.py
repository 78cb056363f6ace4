"""The records keel keeps, as frozen dataclasses.

These are what the store returns and what the tracking client wraps in handles. They carry
no database state: ORM rows never leave ``keel.store``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

RUN_KINDS = ("tracking", "dataset", "train", "retest", "batch-predict", "pipeline-run")
RUN_STATUSES = ("scheduled", "running", "finished", "failed", "killed")
TERMINAL_STATUSES = ("finished", "failed", "killed")


@dataclass(frozen=True)
class Project:
    """A namespace for experiments, models and datasets."""

    id: str
    name: str
    created_at: int


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    id: str
    project: str
    name: str
    tags: dict[str, Any]
    created_at: int
    updated_at: int
    lifecycle: str = "active"


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history. Timestamps are milliseconds since the epoch."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return (self.key, self.step, self.timestamp) == (
            other.key,
            other.step,
            other.timestamp,
        ) and same_value

    def __hash__(self) -> int:
        return hash((self.key, self.step, self.timestamp))


@dataclass(frozen=True)
class Run:
    """One execution: its status, params, latest metrics, tags and where it ran."""

    id: str
    experiment_id: str
    name: str
    kind: str
    status: str
    start_time: int | None
    end_time: int | None
    parent_id: str | None
    author: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    lifecycle: str = "active"
    created_at: int = 0


@dataclass(frozen=True)
class ArtifactFile:
    """One stored file of a run, addressed by its path inside the run."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RegisteredModel:
    """A named model whose versions are registered over time."""

    id: str
    project: str
    name: str
    description: str
    tags: dict[str, Any]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: int
    updated_at: int


#: the source a version was registered from through MLflow's API when keel does not hold its
#: files (``s3://…``, a path the client wrote itself): the version has no run and no hash
EXTERNAL_SOURCE_TAG = "keel.mlflow.source"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, pointing to the run artifact it was made from."""

    id: str
    model: str
    version: int
    label: str | None
    description: str
    run_id: str | None
    path_in_run: str
    content_hash: str
    aliases: tuple[str, ...]
    tags: dict[str, Any]
    metrics: dict[str, float]
    library_versions: dict[str, str]
    author: str
    created_at: int


@dataclass(frozen=True)
class Dataset:
    """A named, versioned, content-hashed set of files."""

    id: str
    project: str
    name: str
    version: int
    content_hash: str
    description: str
    run_id: str | None
    tags: dict[str, Any]
    author: str
    created_at: int


@dataclass(frozen=True)
class InvocationIndex:
    """Where one invocation record lives: line ``batch_offset`` of blob ``batch_sha256``."""

    request_id: str
    timestamp: int  # ms since the epoch (UTC)
    latency_ms: float
    status: str  # "ok" or "error"
    batch_sha256: str
    batch_offset: int


@dataclass(frozen=True)
class InvocationRecord:
    """One prediction call as recorded: its id, input, result and how long it took."""

    request_id: str
    model: str
    version: int
    timestamp: int  # ms since the epoch (UTC)
    latency_ms: float
    status: str
    resource: str
    input: Any
    result: Any


ROLES = ("viewer", "editor", "admin")  # each role may do everything the one before it may


@dataclass(frozen=True)
class User:
    """A person (or robot) who may use the platform server, with one role."""

    id: str
    name: str
    role: str
    created_at: int


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of a user (the secret itself is shown once, then only its hash is kept)."""

    id: str
    user: str
    name: str
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None
