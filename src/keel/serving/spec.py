"""The ``api:`` section of keel.yml: resources, their declared inputs, batching, recording.

This module owns the config models of the prediction API and turns each resource's declared
inputs into a pydantic model (what validates a request and what the OpenAPI document shows).

Example::

    api:
      name: iris                    # base path /iris/v<major of the model label>
      record_invokes: true
      max_body_mb: 10
      batching: {enabled: true, max_batch_size: 32, max_wait_ms: 2}
      timeout_s: 30                 # a model call running longer is answered 504
      resources:
        - name: species             # GET /iris/v1/species?sepal_length=5.1&…, or POST JSON
          kind: query
          inputs:
            sepal_length: {type: number, min: 0, max: 20}
            variety: {type: string, enum: [a, b], required: false}
            tags: {type: "string[]", default: []}
        - {name: flower, kind: id, id: {name: flower_id, type: integer}}
        - {name: upload, kind: file, file: data}

Input types are ``number``, ``integer``, ``string``, ``boolean`` and arrays of those
(``number[]``, or ``type: array`` with ``items: number``). An input is required unless it has
a ``default`` or says ``required: false``. ``min``/``max`` bound a number's value and a
string's or array's length.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from keel.config.models import NAME_PATTERN

SCALARS: dict[str, type] = {"number": float, "integer": int, "string": str, "boolean": bool}
RESOURCE_KINDS = ("query", "id", "file")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Closed):
    """One declared input of a resource."""

    type: str = "string"
    items: str | None = None
    required: bool | None = None
    default: Any = None
    enum: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""
    example: Any = None

    @model_validator(mode="after")
    def _known_type(self) -> InputSpec:
        if self.type == "array" and self.items is None:
            raise ValueError("type: array needs items: (e.g. items: number), or write number[]")
        scalar, is_array = self.scalar_type
        if scalar not in SCALARS:
            known = ", ".join([*SCALARS, *(f"{s}[]" for s in SCALARS)])
            what = self.items if self.type == "array" else self.type
            raise ValueError(f"unknown input type {what!r}: use one of {known}")
        if not is_array and self.items is not None:
            raise ValueError("items: applies to arrays only (type: array)")
        return self

    @property
    def scalar_type(self) -> tuple[str, bool]:
        """``("number", True)`` for ``number[]`` or ``type: array, items: number``."""
        if self.type == "array":
            return (self.items or "", True)
        if self.type.endswith("[]"):
            return (self.type[:-2], True)
        return (self.type, False)

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return "default" not in self.model_fields_set

    @property
    def is_array(self) -> bool:
        return self.scalar_type[1]


class IdSpec(_Closed):
    """The path parameter of an id resource."""

    name: str = Field(default="id", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: Literal["string", "integer"] = "string"


class ResourceSpec(_Closed):
    """One resource under the API's base path."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    kind: Literal["query", "id", "file"] = "query"
    description: str = ""
    inputs: dict[str, InputSpec] | None = None  # None: any JSON object is accepted
    id: IdSpec | None = None
    file: str = Field(default="file", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("inputs", mode="before")
    @classmethod
    def _short_inputs(cls, value: Any) -> Any:
        # "x: number" is short for "x: {type: number}"
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> ResourceSpec:
        if self.kind == "id" and self.id is None:
            self.id = IdSpec()
        if self.kind != "id" and "id" in self.model_fields_set:
            raise ValueError(f"id: applies to id resources only (this one is kind: {self.kind})")
        if self.kind == "file" and self.inputs and self.file in self.inputs:
            raise ValueError(f"input {self.file!r} clashes with the file field of the same name")
        return self

    @cached_property
    def input_model(self) -> type[BaseModel] | None:
        """The pydantic model of the declared inputs (None when none are declared)."""
        if self.inputs is None:
            return None
        return build_input_model(f"{self.name.title().replace('-', '')}Inputs", self.inputs)


class BatchingSpec(_Closed):
    """Adaptive micro-batching: concurrent single calls grouped into one ``predict_batch``."""

    enabled: bool = False
    max_batch_size: int = Field(default=32, ge=1, le=10_000)
    max_wait_ms: float = Field(default=2.0, ge=0, le=1_000)


class ApiSpec(_Closed):
    """The ``api:`` section."""

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    description: str = ""
    record_invokes: bool = False
    max_body_mb: float = Field(default=10.0, gt=0)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    # How many model calls run side by side in worker threads: 0 is one at a time (as 1);
    # N lets N calls wait side by side (models that wait on I/O, or that may hang).
    model_threads: int = Field(default=0, ge=0, le=256)
    # How long one model call may run before the request is answered 504 (None: no limit;
    # with model_threads: 0 model code then runs on the event loop itself).
    timeout_s: float | None = Field(default=30.0, gt=0)
    # Calls past timeout_s that may still be running (each holds a thread) before new calls
    # are refused with 503 and /ready answers 503.
    max_hung_calls: int = Field(default=4, ge=1, le=256)
    resources: list[ResourceSpec] = Field(default_factory=list)
    # Recording: how many records may wait in memory, and how long a request waits for room.
    record_queue_size: int = Field(default=10_000, ge=1)
    record_wait_s: float = Field(default=10.0, gt=0)
    record_batch_size: int = Field(default=1_000, ge=1)
    record_flush_s: float = Field(default=1.0, gt=0)

    @field_validator("batching", mode="before")
    @classmethod
    def _batching_flag(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_resources(self) -> ApiSpec:
        seen: set[str] = set()
        for resource in self.resources:
            if resource.name in seen:
                raise ValueError(f"resource {resource.name!r} is declared twice")
            seen.add(resource.name)
        if not self.resources:
            self.resources = [ResourceSpec(name="predict")]
        return self

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def invocations_resource(self) -> ResourceSpec | None:
        """The resource whose inputs ``/invocations`` checks: the first query resource."""
        return next((r for r in self.resources if r.kind == "query"), None)


def _field(spec: InputSpec) -> tuple[Any, Any]:
    """The annotation and ``Field`` of one declared input."""
    from typing import Annotated

    scalar, is_array = spec.scalar_type
    item: Any = SCALARS[scalar]
    if spec.enum is not None:
        item = Literal[tuple(spec.enum)]  # type: ignore[valid-type]
    numeric = scalar in ("number", "integer")
    bounds = {"ge": spec.min, "le": spec.max} if numeric else {}
    lengths: dict[str, Any] = {}
    if not numeric or is_array:  # a string's or array's length
        lengths = {"min_length": _int(spec.min), "max_length": _int(spec.max)}
        if is_array and numeric:
            lengths = {}
    if is_array:
        annotation: Any = list[Annotated[item, Field(**bounds)]] if numeric else list[item]  # type: ignore[valid-type]
        if numeric:
            bounds = {}
    else:
        annotation = item
    extra: dict[str, Any] = {**bounds, **lengths}
    if spec.description:
        extra["description"] = spec.description
    if spec.example is not None:
        extra["examples"] = [spec.example]
    if spec.is_required:
        return annotation, Field(..., **extra)
    if "default" not in spec.model_fields_set:
        annotation = annotation | None
    return annotation, Field(spec.default, **extra)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def build_input_model(name: str, inputs: dict[str, InputSpec]) -> type[BaseModel]:
    """A pydantic model of ``inputs``: unknown fields are errors, each input checked."""
    from pydantic import create_model

    fields = {field_name: _field(spec) for field_name, spec in inputs.items()}
    return create_model(  # type: ignore[call-overload,no-any-return]
        name, __config__=ConfigDict(extra="forbid"), **fields
    )
