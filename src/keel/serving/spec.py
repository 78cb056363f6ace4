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

ML Launchpad's keys are understood too: ``raml: my_api.raml`` (the resources come from that
file, read by :mod:`keel.serving.raml`, relative to keel.yml), ``version`` (the URL's ``v<N>``
when it should not follow the model label), ``preload_datasources`` (read the predict sources
once at startup) and ``root_path`` (a folder whose ``static/`` is served under ``/static/``).

Input types are ``number``, ``integer``, ``string``, ``boolean`` and arrays of those
(``number[]``, or ``type: array`` with ``items: number``). An input is required unless it has
a ``default`` or says ``required: false``. ``min``/``max`` bound a number's value and a
string's or array's length.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from keel.config.models import NAME_PATTERN

if TYPE_CHECKING:
    from keel.config import Config

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
        by_id = "ById" if self.kind == "id" else ""
        name = f"{self.name.title().replace('-', '').replace('_', '')}{by_id}Inputs"
        return build_input_model(name, self.inputs)

    @property
    def route_key(self) -> tuple[str, bool]:
        """What two resources may not share: the name, and whether the path has an id
        (``/varieties`` and ``/varieties/{key}`` may both be declared)."""
        return (self.name, self.kind == "id")


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
    # ML Launchpad: the RAML file declaring the resources (relative to keel.yml).
    raml: str | None = None
    # The URL's version (``v1`` or ``1``): /<name>/v<N>; default: the model label's major.
    version: str | None = Field(default=None, pattern=r"^[vV]?\d+$")
    # Read every predict-phase data source once at startup (useful with expires != 0).
    preload_datasources: bool = False
    # A folder (relative to keel.yml) whose static/ subfolder is served under /static/.
    root_path: str | None = None
    # Recording: how many records may wait in memory, and how long a request waits for room.
    record_queue_size: int = Field(default=10_000, ge=1)
    record_wait_s: float = Field(default=10.0, gt=0)
    record_batch_size: int = Field(default=1_000, ge=1)
    record_flush_s: float = Field(default=1.0, gt=0)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("batching", mode="before")
    @classmethod
    def _batching_flag(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_resources(self) -> ApiSpec:
        if self.raml is not None and self.resources:
            raise ValueError("give the resources in one place: api.raml or api.resources, not both")
        seen: set[tuple[str, bool]] = set()
        for resource in self.resources:
            if resource.route_key in seen:
                raise ValueError(f"resource {resource.name!r} is declared twice")
            seen.add(resource.route_key)
        if not self.resources and self.raml is None:
            self.resources = [ResourceSpec(name="predict")]
        return self

    @property
    def url_version(self) -> str | None:
        """``"1"`` for ``version: v1``; None when the model label decides."""
        return self.version.lstrip("vV") if self.version is not None else None

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


def resolve_spec(spec: ApiSpec, config: Config) -> ApiSpec:
    """``spec`` read against its keel.yml: the RAML file's resources in place of ``raml:``,
    ``root_path`` made absolute (both are relative to keel.yml), the URL version checked.

    The URL's version is ``api.version``, else the RAML file's ``version``, else the major of
    the served model's label. ``api.version`` and RAML's ``version`` must each agree with the
    major of ``model.version`` when that is set (ML Launchpad refused a RAML whose version
    differed from the model's).
    """
    from pathlib import Path

    from keel.errors import ConfigError

    update: dict[str, Any] = {}
    model = config.settings.model
    label_major = _major(model.version) if model is not None and model.version else None
    if spec.url_version is not None and label_major is not None and spec.url_version != label_major:
        raise ConfigError(
            f"{config.where(('api', 'version'))}: api.version: v{spec.url_version} differs "
            f"from the major of model.version {model.version!r} (v{label_major}): make them "
            "agree, or leave api.version out"
        )
    if spec.raml is not None:
        from keel.serving.raml import read_raml

        raml = read_raml(config.base_dir / Path(spec.raml).expanduser())
        expected = spec.url_version or label_major
        if raml.version is not None:
            raml_major = raml.version.lstrip("vV")
            if not raml_major.isdigit():
                raise ConfigError(
                    f"{raml.where(('version',))}: version: expected v<N> (v0, v1 …), "
                    f"got {raml.version!r}"
                )
            raml_major = str(int(raml_major))
            if expected is not None and raml_major != expected:
                raise ConfigError(
                    f"{raml.where(('version',))}: version: {raml.version} differs from the "
                    f"config's API version v{expected} (the major of model.version): make "
                    "them agree"
                )
            update["version"] = spec.version or f"v{raml_major}"
        update["resources"] = raml.resources
    if spec.root_path is not None:
        update["root_path"] = str((config.base_dir / Path(spec.root_path).expanduser()).resolve())
    return spec.model_copy(update=update) if update else spec


def _major(label: str) -> str | None:
    head = label.lstrip("vV").split(".", 1)[0]
    return str(int(head)) if head.isdigit() else None
