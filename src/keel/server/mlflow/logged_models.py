"""MLflow 3's logged models, kept as keel runs (see :mod:`.records` for the mapping).

``mlflow.<flavor>.log_model`` creates a logged model, uploads its files to the model's
``artifact_uri`` through the ``mlflow-artifacts`` proxy, copies the run's metrics to it and
marks it ready; registering ``runs:/<run>/<name>`` finds it again by searching the logged
models of the run's experiment. Each of those calls is one route here: create, get, finalize
(status), delete, search, tags, params.
"""

from __future__ import annotations

from typing import Any

from keel.server.mlflow.protocol import (
    Call,
    MlflowError,
    new_router,
    operation,
)
from keel.server.mlflow.records import (
    DEFAULT_EXPERIMENT_ID,
    LOGGED_MODEL_STATUS,
    LOGGED_MODEL_STATUS_FROM_MLFLOW,
    LOGGED_MODEL_TAG,
    MODEL_ID_PREFIX,
    MODEL_TYPE_TAG,
    PRIVATE_TAG_PREFIX,
    SOURCE_RUN_TAG,
    ExperimentIds,
    get_run,
    is_id,
    keel_experiment_id,
    logged_model_json,
    logged_model_run,
    new_id,
    now_ms,
)
from keel.server.mlflow.search import (
    Attribute,
    Target,
    offset_of,
    page_size,
    paged,
    parse_filter,
    translate,
)

router = new_router()  # under /api/2.0
API = "/mlflow/logged-models"


def _model_id(value: str) -> str:
    run_id = value[len(MODEL_ID_PREFIX) :] if value.startswith(MODEL_ID_PREFIX) else ""
    return run_id if is_id(run_id) else "0" * 32  # an id no run has: nothing matches


def _status(value: str) -> str:
    found = LOGGED_MODEL_STATUS_FROM_MLFLOW.get(value.upper())
    if found is None:
        raise MlflowError(
            f"Invalid logged model status {value!r}: use one of "
            + ", ".join(LOGGED_MODEL_STATUS_FROM_MLFLOW)
        )
    return found


LOGGED_MODELS = Target(
    "logged models",
    attributes={
        "name": Attribute("name"),
        "model_id": Attribute("id", convert=_model_id),
        "source_run_id": Attribute(f"tags.{SOURCE_RUN_TAG}"),
        "status": Attribute("status", convert=_status),
        "model_type": Attribute(f"tags.{MODEL_TYPE_TAG}"),
        "creation_timestamp": Attribute("created_at", numeric=True),
        "creation_time": Attribute("created_at", numeric=True),
        "last_updated_timestamp": Attribute("end_time", numeric=True),
    },
    kinds=frozenset({"metric", "param", "tag"}),
    order_attributes={
        "name": "name",
        "model_id": "id",
        "creation_timestamp": "created_at",
        "creation_time": "created_at",
        "last_updated_timestamp": "end_time",
    },
)


def _user_tags(call: Call, name: str) -> dict[str, str]:
    tags = call.args.key_values(name)
    private = [key for key in tags if key.startswith(PRIVATE_TAG_PREFIX)]
    if private:
        raise MlflowError(f"Tags starting with {PRIVATE_TAG_PREFIX!r} are keel's: {private}")
    return tags


@operation(router, "POST", API, "editor")
def create_logged_model(call: Call) -> dict[str, Any]:
    """A logged model: a new keel run holding its files, params and tags, the child of its
    source run when both are in the experiment."""
    args = call.args
    exp_id = keel_experiment_id(call, args.text("experiment_id") or DEFAULT_EXPERIMENT_ID)
    experiment = call.store.get_experiment(exp_id)
    if experiment.lifecycle != "active":
        raise MlflowError(f"Experiment {args.text('experiment_id')} is deleted: restore it first")
    tags = _user_tags(call, "tags")
    tags[LOGGED_MODEL_TAG] = "true"
    parent_id = None
    source = args.text("source_run_id")
    if source:
        source_run = get_run(call, source)
        tags[SOURCE_RUN_TAG] = source
        if source_run.experiment_id == exp_id:
            parent_id = source
    if args.text("model_type"):
        tags[MODEL_TYPE_TAG] = args.text("model_type")
    run_id = new_id()
    name = args.text("name") or f"model-{run_id[:8]}"
    call.store.create_run(
        exp_id,
        name=name,
        kind="tracking",
        status="running",
        parent_id=parent_id,
        tags=tags,
        author=call.principal.name,
        run_id=run_id,
    )
    params = args.key_values("params")
    if params:
        call.store.log_batch(run_id, params=params)
    return {"model": logged_model_json(call.store.get_run(run_id), ExperimentIds(call))}


@operation(router, "GET", API + "/{model_id}", "viewer")
def get_logged_model(call: Call) -> dict[str, Any]:
    model_id = call.request.path_params["model_id"]
    run = logged_model_run(call, model_id, allow_deleted=call.args.boolean("allow_deleted"))
    return {"model": logged_model_json(run, ExperimentIds(call))}


@operation(router, "PATCH", API + "/{model_id}", "editor")
def finalize_logged_model(call: Call) -> dict[str, Any]:
    """Set a logged model's status (READY ends its run as finished)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    status = _status(call.args.text("status", required=True))
    if LOGGED_MODEL_STATUS.get(run.status) != call.args.text("status"):
        end = now_ms() if status != "running" else None
        run = call.store.update_run(run.id, status=status, end_time=end)
    return {"model": logged_model_json(run, ExperimentIds(call))}


@operation(router, "DELETE", API + "/{model_id}", "editor")
def delete_logged_model(call: Call) -> None:
    """Mark a logged model's run deleted (versions registered from it keep their files)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    call.store.update_run(run.id, lifecycle="deleted")


@operation(router, "POST", API + "/search", "viewer")
def search_logged_models(call: Call) -> dict[str, Any]:
    """Logged models of experiments, filtered, sorted and paged in the store."""
    args = call.args
    if args.objects("datasets"):
        raise MlflowError("keel does not keep MLflow datasets: dataset filters are not supported")
    size = page_size(args.integer("max_results"), 100, 50_000)
    offset = offset_of(args.text("page_token"))
    experiments = [keel_experiment_id(call, e) for e in args.strings("experiment_ids")]
    parts: list[dict[str, Any]] = [
        {"experiment_id": {"$in": experiments}},
        {f"tags.{LOGGED_MODEL_TAG}": "true"},
    ]
    query = translate(parse_filter(args.text("filter")), LOGGED_MODELS)
    if query:
        parts.append(query)
    sort = []
    for index, item in enumerate(args.objects("order_by")):
        name = item.get("field_name")
        if not isinstance(name, str) or not name:
            raise MlflowError(
                f"Missing value for required parameter 'order_by[{index}].field_name'."
            )
        if item.get("dataset_name"):
            raise MlflowError(
                "keel does not keep MLflow datasets: order_by dataset_name is not supported"
            )
        head, _, rest = name.partition(".")
        if rest and head in ("metrics", "params", "tags"):
            column = name
        else:
            column = LOGGED_MODELS.order_attributes.get(rest if head == "attributes" else name, "")
            if not column:
                raise MlflowError(f"Invalid order_by field {name!r}")
        sort.append((column, 1 if item.get("ascending", True) else -1))
    sort.append(("created_at", -1))
    found = call.store.find_runs(None, {"$and": parts}, sort, size + 1, offset)
    page, token = paged(found, offset, size)
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {"models": [logged_model_json(r, ids) for r in page]}
    if token:
        reply["next_page_token"] = token
    return reply


@operation(router, "PATCH", API + "/{model_id}/tags", "editor")
def set_logged_model_tags(call: Call) -> None:
    run = logged_model_run(call, call.request.path_params["model_id"])
    tags = _user_tags(call, "tags")
    if tags:
        call.store.log_batch(run.id, tags=tags)


@operation(router, "DELETE", API + "/{model_id}/tags/{tag_key:path}", "editor")
def delete_logged_model_tag(call: Call) -> None:
    run = logged_model_run(call, call.request.path_params["model_id"])
    key = call.request.path_params["tag_key"]
    if key.startswith(PRIVATE_TAG_PREFIX):
        raise MlflowError(f"Tags starting with {PRIVATE_TAG_PREFIX!r} are keel's: {key!r}")
    call.store.delete_run_tag(run.id, key)


@operation(router, "POST", API + "/{model_id}/params", "editor")
def log_logged_model_params(call: Call) -> None:
    """Params of a logged model (write-once, as a run's)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    params = call.args.key_values("params")
    if params:
        call.store.log_batch(run.id, params=params)
