"""keel's records in MLflow's terms, both ways.

The mapping (every choice here is one the README states):

* **Project** ↔ a prefix of MLflow names: experiment and registered model ``NAME`` of
  project ``P`` is called ``P~NAME`` in MLflow (``~`` is outside keel's name alphabet, and
  MLflow allows it in model names, where ``/`` and ``:`` are refused). The ``default``
  project uses bare names, so a client of the default project sees the server's own
  experiments and models too.
* **Experiments, runs, registered models, versions, aliases** are MLflow's own. keel's ids are
  MLflow's ids (an experiment id is MLflow's number as text; a version's id is
  ``<MLflow model name>@<version>``).
* What MLflow lacks goes into reserved tags, hidden from keel's ``tags``: ``keel.*`` (keel's
  fields) and ``mlflow.*`` (MLflow's system tags: ``mlflow.user`` is the author,
  ``mlflow.parentRunId`` the parent run).
* **Params and tags are strings in MLflow**; keel's are JSON values. A value is kept as its
  text (:func:`keel.store.values.encode_value`: strings as they are, so MLflow users see
  ``lr=0.1``) and the JSON type of every non-string value in one reserved tag
  (``keel.param_types`` / ``keel.tag_types``), so ``3`` comes back as ``3``, ``"3"`` as ``"3"``.
* Long reserved values (a run's environment, a traceback) are split over several tags when
  longer than MLflow's limit for one.
* **Metrics**: MLflow keeps ±inf as ±1.7976931348623157e308 (the largest float); reading
  turns that back into ±inf.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from keel.entities import Dataset, Experiment, ModelVersion, RegisteredModel, Run
from keel.errors import InvalidInput
from keel.store.validation import check_key
from keel.store.values import decode_value, encode_value

DEFAULT_PROJECT = "default"
SEP = "~"
#: the reserved experiment of a project that holds its dataset records
DATASETS = ".keel-datasets"
RESERVED_PREFIXES = ("keel.", "mlflow.")
TAG_TYPES = "keel.tag_types"
PARAM_TYPES = "keel.param_types"
#: MLflow's limits (mlflow/utils/validation.py, 3.x)
MAX_PARAM_VALUE = 6000
MAX_RUN_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_MODEL_TAG_VALUE = 100_000
_CHUNKED = "#keel-chunks:"
_FLOAT_MAX = sys.float_info.max

STATUS_TO_MLFLOW = {
    "scheduled": "SCHEDULED",
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
}
STATUS_FROM_MLFLOW = {v: k for k, v in STATUS_TO_MLFLOW.items()}


# --- names -----------------------------------------------------------------------------------


def qualified(project: str, name: str) -> str:
    """The MLflow name of keel's ``name`` in ``project``."""
    return name if project == DEFAULT_PROJECT else f"{project}{SEP}{name}"


def split_name(mlflow_name: str) -> tuple[str, str]:
    """(project, name) of an MLflow experiment or model name."""
    project, sep, name = mlflow_name.partition(SEP)
    return (project, name) if sep else (DEFAULT_PROJECT, mlflow_name)


def project_prefix(project: str) -> str | None:
    """The LIKE pattern narrowing a search to a project's names (None: the default project,
    whose names have no prefix)."""
    return None if project == DEFAULT_PROJECT else f"{project}{SEP}%"


def literal(text: str) -> str:
    """A string literal of MLflow's filter grammar (names, hashes, ids: never both quotes)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise InvalidInput(f"{text!r} holds both quote characters: MLflow's search cannot take it")


def segment(value: str) -> str:
    """An id as one path segment under the artifact proxy."""
    return quote(value, safe="@~-_.") if value not in (".", "..") else quote(value, safe="")


def now_ms() -> int:
    return int(time.time() * 1000)


def record(entity: Any, **extra: Any) -> dict[str, Any]:
    """A record of keel's for :mod:`keel.store.matching` (related records in ``extra``)."""
    out = dict(vars(entity))
    out.update(extra)
    return out


# --- typed values ----------------------------------------------------------------------------


def pairs(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """MLflow's ``[{"key": …, "value": …}]`` as a dict."""
    return {str(i["key"]): str(i.get("value", "")) for i in items or ()}


def as_items(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def encode_values(
    values: Mapping[str, Any] | None, what: str, max_chars: int
) -> tuple[dict[str, str], dict[str, str]]:
    """(key → text, key → JSON type) of the user's params or tags, checked for MLflow."""
    texts: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for key, value in (values or {}).items():
        check_key(key, what)
        if key.startswith(RESERVED_PREFIXES):
            raise InvalidInput(
                f"{what} key {key!r} is reserved on an MLflow server (keys starting with "
                "'keel.' or 'mlflow.' hold keel's and MLflow's own fields): rename it"
            )
        text, kind, _ = encode_value(value)
        if len(text) > max_chars:
            raise InvalidInput(
                f"{what} {key!r} is {len(text)} characters; an MLflow server keeps up to "
                f"{max_chars}: store it as an artifact instead"
            )
        texts[key] = text
        kinds[key] = kind
    return texts, kinds


def types_of(raw: Mapping[str, str], key: str) -> dict[str, str]:
    """The JSON types recorded under a reserved tag (empty when absent or unreadable)."""
    text = get_long(raw, key)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def merged_types(current: Mapping[str, str], kinds: Mapping[str, str]) -> dict[str, str]:
    """``current`` updated with the types of newly written values (strings need no entry)."""
    out = dict(current)
    for key, kind in kinds.items():
        if kind == "str":
            out.pop(key, None)
        else:
            out[key] = kind
    return out


def decode_values(raw: Mapping[str, str], types: Mapping[str, str]) -> dict[str, Any]:
    """The user's values (reserved keys left out), typed back."""
    out: dict[str, Any] = {}
    for key, text in raw.items():
        if key.startswith(RESERVED_PREFIXES):
            continue
        kind = types.get(key, "str")
        try:
            out[key] = decode_value(text, kind)
        except ValueError:  # changed by hand in MLflow: keep what is there
            out[key] = text
    return out


def put_long(key: str, text: str, limit: int) -> dict[str, str]:
    """Tags holding ``text`` under ``key``: one tag, or a header and numbered chunks."""
    if len(text) <= limit and not text.startswith(_CHUNKED):
        return {key: text}
    chunks = [text[i : i + limit] for i in range(0, len(text), limit)]
    out = {key: f"{_CHUNKED}{len(chunks)}"}
    for i, chunk in enumerate(chunks, 1):
        out[f"{key}.{i}"] = chunk
    return out


def get_long(raw: Mapping[str, str], key: str) -> str | None:
    """The text written by :func:`put_long` (None when absent)."""
    value = raw.get(key)
    if value is None or not value.startswith(_CHUNKED):
        return value
    try:
        count = int(value[len(_CHUNKED) :])
    except ValueError:
        return value
    return "".join(raw.get(f"{key}.{i}", "") for i in range(1, count + 1))


def get_json(raw: Mapping[str, str], key: str, default: Any) -> Any:
    text = get_long(raw, key)
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


# --- metric numbers --------------------------------------------------------------------------


def encode_metric(value: float) -> float | str:
    """A metric value for MLflow's JSON (NaN and ±inf as protobuf spells them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_metric(value: Any) -> float:
    """A metric value from MLflow (its ±largest float stands for ±inf)."""
    if isinstance(value, str):
        number = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value)
        if number is None:
            number = float(value)
    else:
        number = float(value)
    if number == _FLOAT_MAX:
        return math.inf
    if number == -_FLOAT_MAX:
        return -math.inf
    return number


# --- records ---------------------------------------------------------------------------------


def experiment(data: Mapping[str, Any]) -> Experiment:
    project, name = split_name(str(data.get("name", "")))
    raw = pairs(data.get("tags"))
    return Experiment(
        id=str(data["experiment_id"]),
        project=project,
        name=name,
        tags=decode_values(raw, types_of(raw, TAG_TYPES)),
        created_at=int(data.get("creation_time") or 0),
        updated_at=int(data.get("last_update_time") or 0),
        lifecycle=str(data.get("lifecycle_stage") or "active"),
    )


def run(data: Mapping[str, Any]) -> Run:
    info = data["info"]
    body = data.get("data") or {}
    raw = pairs(body.get("tags"))
    params = pairs(body.get("params"))
    status = STATUS_FROM_MLFLOW.get(str(info.get("status", "")), "running")
    created = int(info.get("start_time") or 0)
    start_text = raw.get("keel.start_time")
    if start_text is not None:
        start_time = int(start_text) if start_text else None
    else:
        start_time = None if status == "scheduled" else created
    end_time = info.get("end_time")
    return Run(
        id=str(info["run_id"]),
        experiment_id=str(info["experiment_id"]),
        name=str(info.get("run_name") or raw.get("mlflow.runName") or ""),
        kind=raw.get("keel.kind", "tracking"),
        status=status,
        start_time=start_time,
        end_time=int(end_time) if end_time else None,
        parent_id=raw.get("mlflow.parentRunId") or None,
        author=raw.get("mlflow.user") or str(info.get("user_id") or ""),
        params=decode_values(params, types_of(raw, PARAM_TYPES)),
        metrics={str(m["key"]): decode_metric(m.get("value", 0)) for m in body.get("metrics", ())},
        tags=decode_values(raw, types_of(raw, TAG_TYPES)),
        environment=get_json(raw, "keel.environment", {}),
        failure=get_long(raw, "keel.failure") or None,
        lifecycle=str(info.get("lifecycle_stage") or "active"),
        created_at=created,
    )


def registered_model(data: Mapping[str, Any]) -> RegisteredModel:
    project, name = split_name(str(data["name"]))
    raw = pairs(data.get("tags"))
    versions = [int(v["version"]) for v in data.get("latest_versions", ())]
    return RegisteredModel(
        id=str(data["name"]),
        project=project,
        name=name,
        description=str(data.get("description") or ""),
        tags=decode_values(raw, types_of(raw, TAG_TYPES)),
        aliases=aliases_of(data),
        latest_version=max(versions) if versions else None,
        created_at=int(data.get("creation_timestamp") or 0),
        updated_at=int(data.get("last_updated_timestamp") or 0),
    )


def aliases_of(model: Mapping[str, Any]) -> dict[str, int]:
    return {str(a["alias"]): int(a["version"]) for a in model.get("aliases", ())}


def version_id(mlflow_name: str, version: int | str) -> str:
    return f"{mlflow_name}@{version}"


def parse_version_id(value: Any) -> tuple[str, int]:
    """(MLflow model name, version) of a version id made by :func:`version_id`."""
    if isinstance(value, str):
        name, sep, number = value.rpartition("@")
        if sep and name and number.isdigit():
            return name, int(number)
    raise InvalidInput(f"invalid model version id {value!r}: expected '<model>@<version>'")


def model_version(data: Mapping[str, Any], aliases: Mapping[str, int]) -> ModelVersion:
    mlflow_name = str(data["name"])
    _project, name = split_name(mlflow_name)
    number = int(data["version"])
    raw = pairs(data.get("tags"))
    path = raw.get("keel.path_in_run")
    if path is None:
        source = str(data.get("source") or "")
        path = (
            source.split("/", 2)[2]
            if source.startswith("runs:/") and source.count("/") >= 2
            else ""
        )
    metrics = get_json(raw, "keel.metrics", {})
    return ModelVersion(
        id=version_id(mlflow_name, number),
        model=name,
        version=number,
        label=raw.get("keel.label") or None,
        description=str(data.get("description") or ""),
        run_id=str(data.get("run_id") or "") or None,
        path_in_run=path,
        content_hash=raw.get("keel.content_hash", ""),
        aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
        tags=decode_values(raw, types_of(raw, TAG_TYPES)),
        metrics={k: (math.nan if v is None else float(v)) for k, v in metrics.items()},
        library_versions=get_json(raw, "keel.library_versions", {}),
        author=raw.get("keel.author") or str(data.get("user_id") or ""),
        created_at=int(data.get("creation_timestamp") or 0),
    )


def dataset(data: Mapping[str, Any], project: str) -> Dataset:
    """A dataset version from its record (a run in the project's reserved experiment)."""
    info = data["info"]
    raw = pairs((data.get("data") or {}).get("tags"))
    return Dataset(
        id=str(info["run_id"]),
        project=project,
        name=raw.get("keel.dataset.name", ""),
        version=int(raw.get("keel.dataset.version") or 0),
        content_hash=raw.get("keel.content_hash", ""),
        description=get_long(raw, "keel.description") or "",
        run_id=raw.get("keel.dataset.run_id") or None,
        tags=decode_values(raw, types_of(raw, TAG_TYPES)),
        author=raw.get("mlflow.user") or str(info.get("user_id") or ""),
        created_at=int(info.get("start_time") or 0),
    )


def is_dataset_record(data: Mapping[str, Any]) -> bool:
    return "keel.dataset.name" in pairs((data.get("data") or {}).get("tags"))
