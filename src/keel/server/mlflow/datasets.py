"""MLflow's datasets and a run's inputs and outputs, kept as keel datasets and run lineage.

``mlflow.log_input(dataset, context)`` sends ``runs/log-inputs`` with the dataset's name,
digest, source type, source, schema and profile and the input's tags (``mlflow.data.context``
among them); ``log_model`` sends ``runs/outputs`` with the logged model and its step. Here:

* an MLflow dataset is a keel dataset version in the project of the run's experiment, with no
  files (keel holds none of its data): its content hash is ``mlflow:<digest>``, so the same
  name and digest find the same version again (MLflow's identity of a dataset) and the hash
  is never taken for one of keel's own; source type, source, schema and profile are its tags
  ``mlflow.source_type``… (the MLflow name too, as ``mlflow.name``, when keel's name rules
  changed it);
* the run used it: the dataset is linked to the run as an ``input`` (keel's lineage, shown
  from the dataset's side by ``keel.Client.dataset_lineage`` and the UI);
* what keel's lineage has no place for, the input's own tags and the order of the inputs, and
  the run's model inputs and outputs, are the run's hidden tags ``mlflow.keel.*`` (see
  :mod:`.records`), read back into ``get_run``'s ``inputs`` and ``outputs``.

``/ajax-api/2.0/mlflow/experiments/search-datasets`` (MLflow's UI) lists the datasets the runs
of experiments used, with their context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.server.mlflow.protocol import Call, MlflowError, new_router, operation
from keel.server.mlflow.records import (
    KEEL_TAG_PREFIX,
    LOGGED_MODEL_TAG,
    ExperimentIds,
    get_run,
    keel_experiment_id,
    model_id_of,
)
from keel.store.limits import MAX_QUERY_VALUES
from keel.store.validation import check_name

if TYPE_CHECKING:
    from keel.entities import Dataset, Run

__all__ = ["router", "run_inputs_outputs"]

router = new_router()  # under /api/2.0 (and /ajax-api/2.0)
API = "/mlflow"

DATASET_INPUTS_TAG = KEEL_TAG_PREFIX + "datasetInputs"  # [[dataset id, [[key, value]…]]…]
MODEL_INPUTS_TAG = KEEL_TAG_PREFIX + "modelInputs"  # [model id…]
MODEL_OUTPUTS_TAG = KEEL_TAG_PREFIX + "modelOutputs"  # [[model id, step]…]
CONTEXT_TAG = "mlflow.data.context"  # the input tag MLflow's UI shows (training, eval…)
HASH_PREFIX = "mlflow:"
NAME_TAG = "mlflow.name"
#: a dataset's fields keel has no column for, and the dataset tag each is kept in
FIELD_TAGS = {
    "source_type": "mlflow.source_type",
    "source": "mlflow.source",
    "schema": "mlflow.schema",
    "profile": "mlflow.profile",
}

# MLflow's limits (mlflow.utils.validation)
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_DATASETS_PER_BATCH = 1000
MAX_EXPERIMENT_IDS_PER_SEARCH = 20
MAX_DATASET_SUMMARIES = 1000

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-/ ]")


def _text(value: Any, name: str, limit: int, *, required: bool = True) -> str | None:
    """A string field of a dataset or input tag, within MLflow's length limit."""
    if value is None:
        if required:
            raise MlflowError(f"{name.rsplit('.', 1)[-1].capitalize()} cannot be None")
        return None
    if not isinstance(value, str):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied.")
    if len(value) > limit:
        raise MlflowError(
            f"'{name.rsplit('.', 1)[-1]}' exceeds the maximum length of {limit} characters"
        )
    return value


def _dataset_fields(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The dataset of ``datasets[index]`` checked as MLflow checks it."""
    found = item.get("dataset")
    if not isinstance(found, dict):
        raise MlflowError("Dataset input must have a dataset associated with it.")
    path = f"datasets[{index}].dataset"
    # proto JSON: a field left out is its default, the empty text
    fields = {
        "name": _text(found.get("name", ""), f"{path}.name", MAX_DATASET_NAME_SIZE),
        "digest": _text(found.get("digest", ""), f"{path}.digest", MAX_DATASET_DIGEST_SIZE),
        "source_type": _text(found.get("source_type", ""), f"{path}.source_type", 10**6),
        "source": _text(found.get("source", ""), f"{path}.source", MAX_DATASET_SOURCE_SIZE),
        "schema": _text(
            found.get("schema"), f"{path}.schema", MAX_DATASET_SCHEMA_SIZE, required=False
        ),
        "profile": _text(
            found.get("profile"), f"{path}.profile", MAX_DATASET_PROFILE_SIZE, required=False
        ),
    }
    tags = []
    for number, tag in enumerate(item.get("tags") or []):
        if not isinstance(tag, dict):
            raise MlflowError(f"Invalid value {tag!r} for parameter 'datasets[{index}].tags'.")
        where = f"datasets[{index}].tags[{number}]"
        key = _text(tag.get("key"), f"{where}.key", MAX_INPUT_TAG_KEY_SIZE)
        value = _text(tag.get("value"), f"{where}.value", MAX_INPUT_TAG_VALUE_SIZE)
        tags.append([key, value])
    fields["tags"] = tags
    return fields


def keel_dataset_name(name: str) -> str:
    """keel's name for an MLflow dataset: the same when keel's name rules allow it, else the
    characters keel refuses replaced by ``_`` (the MLflow name is kept in a tag)."""
    try:
        return check_name(name, "dataset")
    except InvalidInput:
        pass
    fixed = re.sub("/+", "/", _NOT_NAME.sub("_", name)).replace("..", "_.")[:256] or "_"
    if not (fixed[0].isalnum() or fixed[0] == "_"):
        fixed = "_" + fixed[:255]
    if fixed[-1] in "/ ":
        fixed = fixed[:-1] + "_"
    return fixed


def _find_or_create(call: Call, project: str, fields: Mapping[str, Any]) -> str:
    """The id of the keel dataset version an MLflow dataset is (made when new)."""
    name = keel_dataset_name(fields["name"])
    tags = {tag: fields[field] for field, tag in FIELD_TAGS.items() if fields[field] is not None}
    if name != fields["name"]:
        tags[NAME_TAG] = fields["name"]
    dataset, _created = call.store.create_dataset(
        project,
        name,
        content_hash=HASH_PREFIX + fields["digest"],
        files=[],
        tags=tags,
        author=call.principal.name,
    )
    return dataset.id


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@operation(router, "POST", f"{API}/runs/log-inputs", "editor", "LogInputs")
def log_inputs(call: Call) -> None:
    """Datasets (each a keel dataset linked to the run as an input) and logged models a run
    used. An input logged again (same name and digest) keeps its first tags, as MLflow's."""
    args = call.args
    run_id = args.text("run_id", required=True)
    items = args.objects("datasets")
    models = args.objects("models")
    if len(items) > MAX_DATASETS_PER_BATCH:
        raise MlflowError(
            f"A batch logging request can contain at most {MAX_DATASETS_PER_BATCH} datasets. "
            f"Got {len(items)} datasets."
        )
    checked = [_dataset_fields(item, index) for index, item in enumerate(items)]
    model_ids = []
    for index, model in enumerate(models):
        model_id = model.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise MlflowError(f"Missing value for required parameter 'models[{index}].model_id'.")
        model_ids.append(model_id)
    run = get_run(call, run_id)
    _check_active(run.id, run.lifecycle)
    project = call.store.get_experiment(run.experiment_id).project
    inputs = [entry for entry in _list(run.tags.get(DATASET_INPUTS_TAG)) if len(entry) == 2]
    used = {entry[0] for entry in inputs}
    seen: set[tuple[str, str]] = set()
    for fields in checked:
        if (fields["name"], fields["digest"]) in seen:
            continue  # the first of two inputs with one name and digest counts, as in MLflow
        seen.add((fields["name"], fields["digest"]))
        dataset_id = _find_or_create(call, project, fields)
        if dataset_id not in used:
            call.store.link_dataset(dataset_id, run.id, "input")
            inputs.append([dataset_id, fields["tags"]])
            used.add(dataset_id)
    tags: dict[str, Any] = {}
    if len(inputs) != len(_list(run.tags.get(DATASET_INPUTS_TAG))):
        tags[DATASET_INPUTS_TAG] = inputs
    if model_ids:
        known = _list(run.tags.get(MODEL_INPUTS_TAG))
        tags[MODEL_INPUTS_TAG] = known + [m for m in model_ids if m not in known]
    if tags:
        call.store.log_batch(run.id, tags=tags)


@operation(router, "POST", f"{API}/runs/outputs", "editor", "LogOutputs")
def log_outputs(call: Call) -> None:
    """Logged models a run made, with the step each was logged at (MLflow does not check
    that the models exist; neither does keel)."""
    args = call.args
    run_id = args.text("run_id", required=True)
    if "models" not in args.data:
        raise MlflowError("Missing value for required parameter 'models'.")
    outputs = []
    for index, item in enumerate(args.objects("models")):
        model_id = item.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise MlflowError(f"Missing value for required parameter 'models[{index}].model_id'.")
        step = item.get("step", 0)
        if isinstance(step, str) and step.lstrip("-").isdigit():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            raise MlflowError(
                f"Invalid value {step!r} for parameter 'models[{index}].step' supplied."
            )
        outputs.append([model_id, step])
    run = get_run(call, run_id)
    _check_active(run.id, run.lifecycle)
    if outputs:
        known = _list(run.tags.get(MODEL_OUTPUTS_TAG))
        call.store.log_batch(run.id, tags={MODEL_OUTPUTS_TAG: known + outputs})


def _check_active(run_id: str, lifecycle: str) -> None:
    if lifecycle != "active":
        raise MlflowError(
            f"The run {run_id} must be in the 'active' state. Current state is {lifecycle}."
        )


# --- reading back ----------------------------------------------------------------------------


def _datasets_by_id(call: Call, ids: list[str]) -> dict[str, Dataset]:
    found = {}
    for start in range(0, len(ids), MAX_QUERY_VALUES):
        chunk = ids[start : start + MAX_QUERY_VALUES]
        for dataset in call.store.find_datasets(None, {"id": {"$in": chunk}}):
            found[dataset.id] = dataset
    return found


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    """A keel dataset as MLflow's ``Dataset`` (a keel dataset not logged through MLflow: its
    content hash is the digest, its source type ``keel``)."""
    digest = dataset.content_hash
    tags = dataset.tags
    found: dict[str, Any] = {
        "name": str(tags.get(NAME_TAG, dataset.name)),
        "digest": digest[len(HASH_PREFIX) :] if digest.startswith(HASH_PREFIX) else digest,
        "source_type": str(tags.get(FIELD_TAGS["source_type"], "keel")),
        "source": str(tags.get(FIELD_TAGS["source"], f"{dataset.name}@{dataset.version}")),
    }
    for field in ("schema", "profile"):
        value = tags.get(FIELD_TAGS[field])
        if isinstance(value, str):
            found[field] = value
    return found


def _logged_model_outputs(call: Call, run_id: str) -> list[list[Any]]:
    """Logged models whose run is a child of ``run_id`` (logged before keel kept outputs)."""
    found = call.store.find_runs(
        None, {"parent_id": run_id, f"tags.{LOGGED_MODEL_TAG}": "true"}, [("created_at", 1)]
    )
    return [[model_id_of(r.id), 0] for r in found]


def run_inputs_outputs(call: Call, run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's MLflow ``inputs`` (datasets with their input tags, logged models) and
    ``outputs`` (logged models with their steps)."""
    entries = [e for e in _list(run.tags.get(DATASET_INPUTS_TAG)) if len(e) == 2]
    datasets = _datasets_by_id(call, [e[0] for e in entries]) if entries else {}
    dataset_inputs = [
        {
            "tags": [{"key": k, "value": v} for k, v in tags],
            "dataset": dataset_json(datasets[dataset_id]),
        }
        for dataset_id, tags in entries
        if dataset_id in datasets  # a dataset keel gc purged: the input is gone with it
    ]
    inputs: dict[str, Any] = {}
    if dataset_inputs:
        inputs["dataset_inputs"] = dataset_inputs
    model_inputs = _list(run.tags.get(MODEL_INPUTS_TAG))
    if model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in model_inputs]
    outputs = _list(run.tags.get(MODEL_OUTPUTS_TAG))
    named = {m for m, _step in outputs}
    outputs += [o for o in _logged_model_outputs(call, run.id) if o[0] not in named]
    return inputs, (
        {"model_outputs": [{"model_id": m, "step": s} for m, s in outputs]} if outputs else {}
    )


# --- the UI's search ----------------------------------------------------------------------


@operation(router, "POST", f"{API}/experiments/search-datasets", "viewer")
def search_datasets(call: Call) -> dict[str, Any]:
    """The datasets the runs of experiments used: experiment, name, digest and context (at
    most 1,000, as MLflow's)."""
    experiment_ids = call.args.strings("experiment_ids")
    if not experiment_ids:
        raise MlflowError("SearchDatasets request must specify at least one experiment_id.")
    if len(experiment_ids) > MAX_EXPERIMENT_IDS_PER_SEARCH:
        raise MlflowError(
            "SearchDatasets request cannot specify more than "
            f"{MAX_EXPERIMENT_IDS_PER_SEARCH} experiment_ids. Received {len(experiment_ids)} "
            "experiment_ids."
        )
    experiments = []
    for mlflow_id in experiment_ids:
        try:
            experiments.append(keel_experiment_id(call, mlflow_id))
        except MlflowError:
            continue  # MLflow's answer leaves out experiments it does not have
    runs = call.store.find_runs(
        None,
        {
            "$and": [
                {"experiment_id": {"$in": experiments}},
                {f"tags.{DATASET_INPUTS_TAG}": {"$exists": True}},
            ]
        },
        [("created_at", 1)],
        include_deleted=True,
    )
    pairs = [
        (run.experiment_id, entry)
        for run in runs
        for entry in _list(run.tags.get(DATASET_INPUTS_TAG))
        if len(entry) == 2
    ]
    datasets = _datasets_by_id(call, sorted({entry[0] for _exp, entry in pairs}))
    ids = ExperimentIds(call)
    summaries: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str | None]] = set()
    for exp_id, (dataset_id, tags) in pairs:
        dataset = datasets.get(dataset_id)
        if dataset is None:
            continue
        shown = dataset_json(dataset)
        context = next((v for k, v in tags if k == CONTEXT_TAG), None)
        key = (exp_id, shown["name"], shown["digest"], context)
        if key in seen:
            continue
        seen.add(key)
        summary = {"experiment_id": ids(exp_id), "name": shown["name"], "digest": shown["digest"]}
        if context is not None:
            summary["context"] = context
        summaries.append(summary)
        if len(summaries) >= MAX_DATASET_SUMMARIES:
            break
    return {"dataset_summaries": summaries}
