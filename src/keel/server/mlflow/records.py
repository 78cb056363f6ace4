"""keel's records as MLflow's JSON, and MLflow's names for them back as keel's.

This module owns every mapping decision between the two data models:

* **ids**: keel ids (32 hex characters) are MLflow ids as they are: run ids have MLflow's
  form, and MLflow's client takes experiment ids as opaque text. The one exception is
  MLflow's default experiment ``"0"``, which clients use when no experiment is set: it is
  the experiment named ``Default`` in the server's project (made on first use) and is shown
  as ``"0"``.
* **where**: experiments and registered models are those of the server's project
  (``keel server``'s ``project``); any keel experiment or run is reachable by id.
* **runs**: status ``RUNNING``… is keel's ``running``…; ``lifecycle_stage`` is keel's
  ``lifecycle``; ``user_id`` is the author; the run name is kept in the tag
  ``mlflow.runName`` too (MLflow's server does the same); params and tags are text (keel
  values that are not text are shown as JSON). A run's latest metrics carry no step or
  time (keel keeps those in the history, not with the latest value).
* **artifacts**: a run's ``artifact_uri`` is ``<experiment's location>/<run>/artifacts``. An
  experiment's location is the ``artifact_location`` it was created with (kept in the hidden
  tag ``mlflow.artifactLocation``), else ``server.mlflow_artifact_root``/<id>, else
  ``mlflow-artifacts:/<exp>``: then the client moves files through the ``mlflow-artifacts``
  proxy, which stores them in keel's artifact store as the run's files (elsewhere the client
  writes them itself, see :mod:`.artifacts`).
* **logged models** (MLflow 3): a logged model is a keel run of its own, tagged
  ``mlflow.loggedModel``, the child of the run that logged it when both are in one
  experiment. Its id is ``m-<run id>``, its files are that run's files under ``model/``
  (``mlflow-artifacts:/<exp>/models/m-<id>/artifacts``), its params, tags and metrics are the
  run's, and its status is the run's (pending: running, ready: finished, upload failed:
  failed). MLflow's ``search_runs`` does not show these runs; keel shows them as children.
* **registry**: registered models and versions are keel's. A version whose source names
  files keel stores (``runs:/<run>/<path>``, ``mlflow-artifacts:/…``, ``models:/m-<id>``) is
  a version of those run files, its content hash computed from them; a version made from a
  logged model is, in keel, a version of the logged model's run (path ``model``), and MLflow
  is shown the run that logged the model as its ``run_id``. Any other source MLflow accepts
  makes a version without a run or files. The source and run id as given, the stage and the
  last update time are reserved version tags (``keel.mlflow.*``). Every version is READY.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from keel.entities import EXTERNAL_SOURCE_TAG
from keel.errors import NotFound
from keel.server.deps import get_settings
from keel.server.mlflow.protocol import (
    RESOURCE_DOES_NOT_EXIST,
    Call,
    MlflowError,
    float_json,
)
from keel.store.limits import MAX_QUERY_VALUES
from keel.store.values import encode_text

if TYPE_CHECKING:
    from keel.entities import Experiment, ModelVersion, RegisteredModel, Run

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
LOGGED_MODEL_TAG = "mlflow.loggedModel"  # "true" on the run that holds a logged model
SOURCE_RUN_TAG = "mlflow.loggedModel.sourceRunId"
MODEL_TYPE_TAG = "mlflow.loggedModel.type"
PRIVATE_TAG_PREFIX = "mlflow.loggedModel"  # keel's own bookkeeping: not shown as tags
#: keel's records of what MLflow keeps outside tags (a run's inputs and outputs, the datasets
#: of a logged model's metrics): not shown as tags either
KEEL_TAG_PREFIX = "mlflow.keel."
ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"  # an experiment's own (not shown as a tag)
MODEL_ID_PREFIX = "m-"
MODEL_FOLDER = "model"  # where a logged model's files are in its run
# MLflow's fields of a version that keel has no column for, kept as reserved version tags (not
# shown to MLflow as tags): the source and run id as given, the download URI of a version whose
# files keel does not hold, the stage and the time of the last update
VERSION_TAG_PREFIX = "keel.mlflow."
VERSION_SOURCE_TAG = EXTERNAL_SOURCE_TAG
VERSION_RUN_TAG = "keel.mlflow.run_id"
VERSION_STORAGE_TAG = "keel.mlflow.storage"
VERSION_STAGE_TAG = "keel.mlflow.stage"
VERSION_UPDATED_TAG = "keel.mlflow.updated_at"


def user_tag_key(key: str) -> str:
    """``key``, unless it names one of the tags keel keeps its own records in (a client that
    set or deleted them would corrupt what keel reads back)."""
    if key == ARTIFACT_LOCATION_TAG or key.startswith((KEEL_TAG_PREFIX, VERSION_TAG_PREFIX)):
        raise MlflowError(
            f"Tag key '{key}' is reserved: keel keeps its own records of MLflow fields in "
            f"'{ARTIFACT_LOCATION_TAG}', '{KEEL_TAG_PREFIX}*' and '{VERSION_TAG_PREFIX}*' tags."
        )
    return key


def user_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    """``tags``, each key checked by :func:`user_tag_key`."""
    for key in tags:
        user_tag_key(key)
    return tags


STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "scheduled": "SCHEDULED",
    "finished": "FINISHED",
    "failed": "FAILED",
    "killed": "KILLED",
}
STATUS_FROM_MLFLOW = {v: k for k, v in STATUS_TO_MLFLOW.items()}
LOGGED_MODEL_STATUS = {
    "running": "LOGGED_MODEL_PENDING",
    "scheduled": "LOGGED_MODEL_PENDING",
    "finished": "LOGGED_MODEL_READY",
    "failed": "LOGGED_MODEL_UPLOAD_FAILED",
    "killed": "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_MODEL_STATUS_FROM_MLFLOW = {
    "LOGGED_MODEL_PENDING": "running",
    "LOGGED_MODEL_READY": "finished",
    "LOGGED_MODEL_UPLOAD_FAILED": "failed",
}
_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    """Milliseconds since the epoch (MLflow's and keel's time unit)."""
    return int(time.time() * 1000)


def is_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


# --- experiments -----------------------------------------------------------------------------


def default_experiment(call: Call, create: bool) -> str | None:
    """The keel id of MLflow's experiment ``"0"`` (made when ``create`` and missing)."""
    state = call.request.app.state
    cached = getattr(state, "mlflow_default_experiment", None)
    if cached:
        return str(cached)
    if cached == "" and not create:
        return None  # looked for already, not there
    found = call.store.find_experiments(call.project, {"name": DEFAULT_EXPERIMENT_NAME}, limit=1)
    if found:
        exp_id = found[0].id
    elif create:
        exp_id = call.store.get_or_create_experiment(call.project, DEFAULT_EXPERIMENT_NAME).id
    else:
        state.mlflow_default_experiment = ""
        return None
    state.mlflow_default_experiment = exp_id
    return exp_id


def keel_experiment_id(call: Call, mlflow_id: str) -> str:
    """The keel id an MLflow experiment id means (``"0"``: the Default experiment)."""
    if mlflow_id == DEFAULT_EXPERIMENT_ID:
        found = default_experiment(call, create=True)
        assert found is not None
        return found
    if not is_id(mlflow_id):
        raise MlflowError(
            f"No experiment with id {mlflow_id!r} (keel experiment ids are 32 hex characters; "
            "'0' is the Default experiment)",
            RESOURCE_DOES_NOT_EXIST,
        )
    return mlflow_id


class ExperimentIds:
    """Shows keel experiment ids as MLflow's (the Default experiment is ``"0"``), and where
    their files are (looked up once per experiment and request)."""

    def __init__(self, call: Call) -> None:
        self._default = default_experiment(call, create=False)
        self._call = call
        self._locations: dict[str, str] = {}

    def __call__(self, keel_id: str) -> str:
        return DEFAULT_EXPERIMENT_ID if keel_id == self._default else keel_id

    def location(self, keel_id: str, exp: Experiment | None = None) -> str:
        """An experiment's ``artifact_location``: the one it was created with, else
        ``<server.mlflow_artifact_root>/<id>``, else ``mlflow-artifacts:/<id>``."""
        found = self._locations.get(keel_id)
        if found is None:
            if exp is None:
                try:
                    exp = self._call.store.get_experiment(keel_id)
                except NotFound:
                    exp = None
            own = exp.tags.get(ARTIFACT_LOCATION_TAG) if exp is not None else None
            root = get_settings(self._call.request).mlflow_artifact_root
            if isinstance(own, str) and own:
                found = own
            elif root:
                found = f"{root.rstrip('/')}/{self(keel_id)}"
            else:
                found = f"mlflow-artifacts:/{self(keel_id)}"
            self._locations[keel_id] = found
        return found


def experiment_json(exp: Experiment, ids: ExperimentIds) -> dict[str, Any]:
    mlflow_id = ids(exp.id)
    return {
        "experiment_id": mlflow_id,
        "name": exp.name,
        "artifact_location": ids.location(exp.id, exp),
        "lifecycle_stage": exp.lifecycle,
        "last_update_time": exp.updated_at,
        "creation_time": exp.created_at,
        "tags": tags_json({k: v for k, v in exp.tags.items() if k != ARTIFACT_LOCATION_TAG}),
    }


# --- runs ------------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A param or tag value as MLflow's text."""
    return value if isinstance(value, str) else encode_text(value)


def tags_json(tags: Mapping[str, Any], hide_private: bool = False) -> list[dict[str, str]]:
    return [
        {"key": key, "value": text(value)}
        for key, value in tags.items()
        if not (hide_private and key.startswith((PRIVATE_TAG_PREFIX, KEEL_TAG_PREFIX)))
    ]


def run_artifact_uri(exp_mlflow_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{exp_mlflow_id}/{run_id}/artifacts"


def run_info_json(run: Run, ids: ExperimentIds) -> dict[str, Any]:
    exp = ids(run.experiment_id)
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": exp,
        "user_id": run.author,
        "status": STATUS_TO_MLFLOW.get(run.status, "RUNNING"),
        "artifact_uri": f"{ids.location(run.experiment_id)}/{run.id}/artifacts",
        "lifecycle_stage": run.lifecycle,
    }
    if run.start_time is not None:
        info["start_time"] = run.start_time
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(run: Run, ids: ExperimentIds, model_outputs: Iterable[str] = ()) -> dict[str, Any]:
    tags = dict(run.tags)
    tags.setdefault(RUN_NAME_TAG, run.name)
    return {
        "info": run_info_json(run, ids),
        "data": {
            "metrics": [
                {"key": key, "value": float_json(value), "timestamp": 0, "step": 0}
                for key, value in run.metrics.items()
            ],
            "params": [{"key": key, "value": text(value)} for key, value in run.params.items()],
            "tags": tags_json(tags, hide_private=True),
        },
        "inputs": {},
        "outputs": {"model_outputs": [{"model_id": m, "step": 0} for m in model_outputs]},
    }


def metric_json(key: str, value: float, step: int, timestamp: int) -> dict[str, Any]:
    return {"key": key, "value": float_json(value), "timestamp": timestamp, "step": step}


def get_run(call: Call, run_id: str) -> Run:
    """The run with an MLflow run id, or MLflow's RESOURCE_DOES_NOT_EXIST."""
    if not is_id(run_id):
        raise MlflowError(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
    return call.store.get_run(run_id)


# --- logged models ---------------------------------------------------------------------------


def model_id_of(run_id: str) -> str:
    return MODEL_ID_PREFIX + run_id


def is_logged_model(run: Run) -> bool:
    return run.tags.get(LOGGED_MODEL_TAG) == "true"


def logged_model_run(call: Call, model_id: str, allow_deleted: bool = False) -> Run:
    """The run holding a logged model, or RESOURCE_DOES_NOT_EXIST."""
    run_id = model_id[len(MODEL_ID_PREFIX) :] if model_id.startswith(MODEL_ID_PREFIX) else ""
    missing = MlflowError(f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST)
    if not is_id(run_id):
        raise missing
    try:
        run = call.store.get_run(run_id)
    except NotFound:
        raise missing from None
    if not is_logged_model(run) or (run.lifecycle == "deleted" and not allow_deleted):
        raise missing
    return run


def logged_model_uri(exp_mlflow_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{exp_mlflow_id}/models/{model_id_of(run_id)}/artifacts"


def logged_model_json(run: Run, ids: ExperimentIds) -> dict[str, Any]:
    exp = ids(run.experiment_id)
    model_id = model_id_of(run.id)
    info: dict[str, Any] = {
        "model_id": model_id,
        "experiment_id": exp,
        "name": run.name,
        "creation_timestamp_ms": run.created_at,
        "last_updated_timestamp_ms": run.end_time or run.created_at,
        "artifact_uri": logged_model_uri(exp, run.id),
        "status": LOGGED_MODEL_STATUS.get(run.status, "LOGGED_MODEL_PENDING"),
        "model_type": text(run.tags.get(MODEL_TYPE_TAG, "")),
        "tags": tags_json(run.tags, hide_private=True),
    }
    source = run.tags.get(SOURCE_RUN_TAG)
    if source:
        info["source_run_id"] = text(source)
    return {
        "info": info,
        "data": {
            "params": [{"key": key, "value": text(value)} for key, value in run.params.items()],
            "metrics": [
                {
                    "key": key,
                    "value": float_json(value),
                    "timestamp": 0,
                    "step": 0,
                    "model_id": model_id,
                    "run_id": text(source) if source else run.id,
                }
                for key, value in run.metrics.items()
            ],
        },
    }


# --- where files are -------------------------------------------------------------------------


def parse_artifact_path(path: str) -> tuple[str, str] | None:
    """``(run id, path in the run)`` of a path under ``mlflow-artifacts:/``, else None.

    ``<exp>/<run>/artifacts/<path>`` is a run's file; ``<exp>/models/m-<run>/artifacts/<path>``
    is a logged model's, kept under ``model/`` in its run. The experiment part is not checked
    (a run's id names it).
    """
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[2] == "artifacts" and is_id(parts[1]):
        return parts[1], "/".join(parts[3:])
    if (
        len(parts) >= 4
        and parts[1] == "models"
        and parts[2].startswith(MODEL_ID_PREFIX)
        and is_id(parts[2][len(MODEL_ID_PREFIX) :])
        and parts[3] == "artifacts"
    ):
        return parts[2][len(MODEL_ID_PREFIX) :], "/".join([MODEL_FOLDER, *parts[4:]])
    return None


_ARTIFACTS_SERVICE = "/api/2.0/mlflow-artifacts/artifacts/"


def parse_source(source: str) -> tuple[str, str] | None:
    """``(run id, path in the run)`` a model version's source names, else None.

    Understood: ``models:/m-<id>`` (a logged model), ``runs:/<run>/<path>``,
    ``mlflow-artifacts:/…`` and this server's ``http(s)://…/api/2.0/mlflow-artifacts/artifacts/…``.
    """
    if source.startswith("models:/"):
        rest = source[len("models:/") :].strip("/")
        if rest.startswith(MODEL_ID_PREFIX) and "/" not in rest and "@" not in rest:
            run_id = rest[len(MODEL_ID_PREFIX) :]
            return (run_id, MODEL_FOLDER) if is_id(run_id) else None
        return None
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].strip("/").partition("/")
        return (run_id, path.strip("/")) if is_id(run_id) else None
    parsed = urlparse(source)
    if parsed.scheme == "mlflow-artifacts":
        return parse_artifact_path(unquote(parsed.path))
    if parsed.scheme in ("http", "https") and _ARTIFACTS_SERVICE in parsed.path:
        return parse_artifact_path(unquote(parsed.path.split(_ARTIFACTS_SERVICE, 1)[1]))
    return None


# --- registry --------------------------------------------------------------------------------


def source_runs(call: Call, versions: Iterable[ModelVersion]) -> dict[str, Run]:
    """The source runs of versions, by id, in one query (deleted ones included)."""
    ids = sorted({v.run_id for v in versions if v.run_id})
    found: dict[str, Run] = {}
    for start in range(0, len(ids), MAX_QUERY_VALUES):  # a page holds up to 200,000
        chunk = ids[start : start + MAX_QUERY_VALUES]
        for run in call.store.find_runs(None, {"id": {"$in": chunk}}, include_deleted=True):
            found[run.id] = run
    return found


def version_location(
    mv: ModelVersion, runs: Mapping[str, Run], ids: ExperimentIds
) -> tuple[str, str, str | None]:
    """(source, download URI, logged model id) of a version (the source as MLflow was given
    it, when it was registered through MLflow)."""
    given = mv.tags.get(VERSION_SOURCE_TAG)
    if mv.run_id is None:  # registered through MLflow from files keel does not hold
        source = text(given) if given is not None else ""
        return source, text(mv.tags.get(VERSION_STORAGE_TAG, source)), None
    run = runs.get(mv.run_id)
    if run is None:
        where = f"runs:/{mv.run_id}/{mv.path_in_run}"
        return text(given) if given is not None else where, where, None
    exp = ids(run.experiment_id)
    if is_logged_model(run) and mv.path_in_run == MODEL_FOLDER:
        uri, model_id = logged_model_uri(exp, run.id), model_id_of(run.id)
        return text(given) if given is not None else f"models:/{model_id}", uri, model_id
    uri = run_artifact_uri(exp, run.id) + (f"/{mv.path_in_run}" if mv.path_in_run else "")
    return text(given) if given is not None else uri, uri, None


def version_stage(mv: ModelVersion) -> str:
    """A version's MLflow stage (``None`` unless moved)."""
    return text(mv.tags.get(VERSION_STAGE_TAG, "None"))


def version_json(mv: ModelVersion, runs: Mapping[str, Run], ids: ExperimentIds) -> dict[str, Any]:
    source, _uri, model_id = version_location(mv, runs, ids)
    run_id = mv.run_id or ""
    if model_id:  # MLflow names the run that logged the model, not the one holding its files
        run_id = text(runs[mv.run_id or ""].tags.get(SOURCE_RUN_TAG, ""))
    if VERSION_RUN_TAG in mv.tags:
        run_id = text(mv.tags[VERSION_RUN_TAG])
    updated = mv.tags.get(VERSION_UPDATED_TAG)
    found: dict[str, Any] = {
        "name": mv.model,
        "version": str(mv.version),
        "creation_timestamp": mv.created_at,
        "last_updated_timestamp": int(updated) if updated is not None else mv.created_at,
        "user_id": mv.author,
        "current_stage": version_stage(mv),
        "description": mv.description,
        "source": source,
        "run_id": run_id,
        "status": "READY",
        "run_link": "",
        "aliases": list(mv.aliases),
        "tags": tags_json(
            {k: v for k, v in mv.tags.items() if not k.startswith(VERSION_TAG_PREFIX)}
        ),
    }
    if model_id:
        found["model_id"] = model_id
    return found


def registered_model_json(
    model: RegisteredModel,
    latest: Sequence[ModelVersion],
    runs: Mapping[str, Run],
    ids: ExperimentIds,
) -> dict[str, Any]:
    """A registered model; ``latest``: its newest version in each stage."""
    found: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "tags": tags_json(model.tags),
        "aliases": [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(model.aliases.items())
        ],
    }
    if latest:
        found["latest_versions"] = [version_json(mv, runs, ids) for mv in latest]
    return found
