"""MLflow's tracking routes: experiments, runs, params, metrics, tags, batches, histories.

Each route reads MLflow's request, calls keel's metadata store (the one the server's
:class:`keel.Client` uses) and answers in MLflow's JSON; :mod:`.records` holds the mappings.
Behaviour kept from MLflow's server: params are write-once (a different value is
``INVALID_PARAMETER_VALUE``), a ``log-batch`` holds at most 1,000 metrics, 100 params, 100
tags and 1,000 items in all (and 1 MB), a deleted run or experiment refuses new runs and
logging, and the default experiment ``"0"`` cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel.entities import Metric
from keel.errors import Conflict
from keel.server.mlflow.protocol import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    Call,
    MlflowError,
    integer,
    new_router,
    number,
    operation,
    text_value,
)
from keel.server.mlflow.records import (
    DEFAULT_EXPERIMENT_ID,
    LOGGED_MODEL_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    STATUS_FROM_MLFLOW,
    ExperimentIds,
    experiment_json,
    get_run,
    is_id,
    keel_experiment_id,
    logged_model_run,
    metric_json,
    model_id_of,
    new_id,
    now_ms,
    run_info_json,
    run_json,
)
from keel.server.mlflow.search import (
    Attribute,
    Target,
    offset_of,
    page_size,
    page_token,
    paged,
    parse_filter,
    sort_of,
    translate,
)

router = new_router()  # under /api/2.0
API = "/mlflow"

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_REQUEST_BYTES = 1_000_000
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
VIEW_TYPES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3, "1": 1, "2": 2, "3": 3}


def _status(value: str) -> str:
    found = STATUS_FROM_MLFLOW.get(value.upper())
    if found is None:
        raise MlflowError(
            f"Invalid run status {value!r}: use one of " + ", ".join(STATUS_FROM_MLFLOW)
        )
    return found


def _status_or_pattern(value: str) -> str:
    """A status to compare with (keel's words), or a LIKE pattern left as it is."""
    return value if "%" in value or "_" in value else _status(value)


RUNS = Target(
    "runs",
    attributes={
        "run_id": Attribute("id"),
        "run_name": Attribute("name"),
        "run name": Attribute("name"),
        "Run name": Attribute("name"),
        "Run Name": Attribute("name"),
        "status": Attribute("status", convert=_status_or_pattern, ignore_case=True),
        "user_id": Attribute("author"),
        "start_time": Attribute("start_time", numeric=True),
        "created": Attribute("start_time", numeric=True),
        "Created": Attribute("start_time", numeric=True),
        "end_time": Attribute("end_time", numeric=True),
    },
    kinds=frozenset({"metric", "param", "tag"}),
    order_attributes={
        "start_time": "start_time",
        "created": "start_time",
        "Created": "start_time",
        "end_time": "end_time",
        "run_name": "name",
        "run_id": "id",
        "status": "status",
        "user_id": "author",
    },
)
EXPERIMENTS = Target(
    "experiments",
    attributes={
        "name": Attribute("name"),
        "creation_time": Attribute("created_at", numeric=True),
        "last_update_time": Attribute("updated_at", numeric=True),
    },
    order_attributes={
        "name": "name",
        "experiment_id": "id",
        "creation_time": "created_at",
        "last_update_time": "updated_at",
    },
)


def _view_type(call: Call, name: str) -> int:
    value = call.args.data.get(name)
    if value in (None, ""):
        return 1
    found = VIEW_TYPES.get(str(value).upper())
    if found is None:
        raise MlflowError(f"Invalid {name} {value!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return found


# --- experiments -----------------------------------------------------------------------------


@operation(router, "POST", f"{API}/experiments/create", "editor")
def create_experiment(call: Call) -> dict[str, Any]:
    """Create an experiment in the server's project (``artifact_location`` is keel's to
    choose: the argument is ignored)."""
    name = call.args.text("name", required=True)
    tags = call.args.key_values("tags")
    try:
        exp = call.store.create_experiment(call.project, name, tags)
    except Conflict:
        raise MlflowError(f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS) from None
    return {"experiment_id": ExperimentIds(call)(exp.id)}


@operation(router, "GET", f"{API}/experiments/get", "viewer")
def get_experiment(call: Call) -> dict[str, Any]:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    return {"experiment": experiment_json(call.store.get_experiment(exp_id), ExperimentIds(call))}


@operation(router, "GET", f"{API}/experiments/get-by-name", "viewer")
def get_experiment_by_name(call: Call) -> dict[str, Any]:
    name = call.args.text("experiment_name", required=True)
    found = call.store.find_experiments(call.project, {"name": name}, limit=1)
    if not found:
        raise MlflowError(f"Could not find experiment with name '{name}'", RESOURCE_DOES_NOT_EXIST)
    return {"experiment": experiment_json(found[0], ExperimentIds(call))}


def _search_experiments(call: Call) -> dict[str, Any]:
    args = call.args
    size = page_size(args.integer("max_results"), 1000, 50_000)
    offset = offset_of(args.text("page_token"))
    query = translate(parse_filter(args.text("filter")), EXPERIMENTS)
    view = _view_type(call, "view_type")
    if view != 3:
        lifecycle = {"lifecycle": "active" if view == 1 else "deleted"}
        query = {"$and": [query, lifecycle]} if query else lifecycle
    sort = sort_of(args.strings("order_by"), EXPERIMENTS) or [("created_at", -1)]
    found = call.store.find_experiments(call.project, query, sort, size + 1, offset)
    page, token = paged(found, offset, size)
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {"experiments": [experiment_json(e, ids) for e in page]}
    if token:
        reply["next_page_token"] = token
    return reply


operation(router, "POST", f"{API}/experiments/search", "viewer")(_search_experiments)
operation(router, "GET", f"{API}/experiments/search", "viewer")(_search_experiments)


def _lifecycle(call: Call, lifecycle: str) -> None:
    mlflow_id = call.args.text("experiment_id", required=True)
    if lifecycle == "deleted" and mlflow_id == DEFAULT_EXPERIMENT_ID:
        raise MlflowError(
            "Cannot delete the default experiment '0'. This is an internal experiment."
        )
    call.store.set_experiment_lifecycle(keel_experiment_id(call, mlflow_id), lifecycle)


@operation(router, "POST", f"{API}/experiments/delete", "editor")
def delete_experiment(call: Call) -> None:
    """Mark an experiment deleted (its runs are left as they are)."""
    _lifecycle(call, "deleted")


@operation(router, "POST", f"{API}/experiments/restore", "editor")
def restore_experiment(call: Call) -> None:
    _lifecycle(call, "active")


@operation(router, "POST", f"{API}/experiments/update", "editor")
def update_experiment(call: Call) -> None:
    """Rename an experiment."""
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    new_name = call.args.text("new_name")
    if new_name:
        try:
            call.store.rename_experiment(exp_id, new_name)
        except Conflict:
            raise MlflowError(
                f"Experiment '{new_name}' already exists.", RESOURCE_ALREADY_EXISTS
            ) from None


@operation(router, "POST", f"{API}/experiments/set-experiment-tag", "editor")
def set_experiment_tag(call: Call) -> None:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    key = call.args.text("key", required=True)
    value = text_value(call.args.data.get("value"), "value")
    call.store.set_experiment_tags(exp_id, {key: value})


@operation(router, "POST", f"{API}/experiments/delete-experiment-tag", "editor")
def delete_experiment_tag(call: Call) -> None:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    call.store.delete_experiment_tag(exp_id, call.args.text("key", required=True))


# --- runs ------------------------------------------------------------------------------------


@operation(router, "POST", f"{API}/runs/create", "editor")
def create_run(call: Call) -> dict[str, Any]:
    """A keel run (kind ``tracking``, status running) in an active experiment; the tag
    ``mlflow.parentRunId`` makes it a child of a run of the same experiment."""
    args = call.args
    exp_id = keel_experiment_id(call, args.text("experiment_id") or DEFAULT_EXPERIMENT_ID)
    experiment = call.store.get_experiment(exp_id)
    if experiment.lifecycle != "active":
        raise MlflowError(
            "Could not create run under non-active experiment with ID "
            f"{args.text('experiment_id')}."
        )
    tags = args.key_values("tags")
    run_id = new_id()
    name = args.text("run_name") or tags.get(RUN_NAME_TAG) or f"tracking-{run_id[:8]}"
    tags[RUN_NAME_TAG] = name
    _check_tags(tags)
    parent_id = None
    parent = tags.get(PARENT_RUN_TAG)
    if parent and is_id(parent):
        found = call.store.find_runs(None, {"id": parent}, limit=1, include_deleted=True)
        if found and found[0].experiment_id == exp_id:
            parent_id = parent
    run = call.store.create_run(
        exp_id,
        name=name,
        kind="tracking",
        status="running",
        parent_id=parent_id,
        tags=tags,
        author=args.text("user_id") or call.principal.name,
        start_time=args.integer("start_time"),
        run_id=run_id,
    )
    return {"run": run_json(run, ExperimentIds(call))}


def _model_outputs(call: Call, run_id: str) -> list[str]:
    found = call.store.find_runs(
        None, {"parent_id": run_id, f"tags.{LOGGED_MODEL_TAG}": "true"}, [("created_at", 1)]
    )
    return [model_id_of(r.id) for r in found]


@operation(router, "GET", f"{API}/runs/get", "viewer")
def get_run_route(call: Call) -> dict[str, Any]:
    run = get_run(call, call.args.run_id())
    return {"run": run_json(run, ExperimentIds(call), _model_outputs(call, run.id))}


@operation(router, "POST", f"{API}/runs/update", "editor")
def update_run(call: Call) -> dict[str, Any]:
    """Status, end time and name of a run (a new name is written to ``mlflow.runName`` too)."""
    args = call.args
    run_id = args.run_id()
    get_run(call, run_id)
    status = args.text("status")
    name = args.text("run_name")
    run = call.store.update_run(
        run_id,
        status=_status(status) if status else None,
        end_time=args.integer("end_time"),
        name=name,
    )
    if name:
        call.store.log_batch(run_id, tags={RUN_NAME_TAG: name})
    return {"run_info": run_info_json(run, ExperimentIds(call))}


@operation(router, "POST", f"{API}/runs/delete", "editor")
def delete_run(call: Call) -> None:
    """Mark a run deleted (``keel gc`` purges it later)."""
    run_id = call.args.run_id()
    get_run(call, run_id)
    call.store.update_run(run_id, lifecycle="deleted")


@operation(router, "POST", f"{API}/runs/restore", "editor")
def restore_run(call: Call) -> None:
    run_id = call.args.run_id()
    get_run(call, run_id)
    call.store.update_run(run_id, lifecycle="active")


@operation(router, "POST", f"{API}/runs/log-metric", "editor")
def log_metric(call: Call) -> None:
    args = call.args
    key = args.text("key", required=True)
    if "value" not in args.data:
        raise MlflowError("Missing value for required parameter 'value'.")
    point = Metric(
        key,
        number(args.data["value"], "value"),
        args.integer("step", default=0),
        args.integer("timestamp") or now_ms(),
    )
    _log(call, args.run_id(), [(point, args.text("model_id"))], {}, {})


@operation(router, "POST", f"{API}/runs/log-parameter", "editor")
def log_param(call: Call) -> None:
    """Log a param; a different value for a logged key is refused (params are write-once)."""
    args = call.args
    key = args.text("key", required=True)
    value = text_value(args.data.get("value"), "value")
    _log(call, args.run_id(), [], {key: value}, {})


@operation(router, "POST", f"{API}/runs/set-tag", "editor")
def set_tag(call: Call) -> None:
    """Set a tag; ``mlflow.runName`` also renames the run."""
    args = call.args
    key = args.text("key", required=True)
    value = text_value(args.data.get("value"), "value")
    _log(call, args.run_id(), [], {}, {key: value})


@operation(router, "POST", f"{API}/runs/delete-tag", "editor")
def delete_tag(call: Call) -> None:
    args = call.args
    run_id = args.run_id()
    key = args.text("key", required=True)
    run = get_run(call, run_id)
    if key not in run.tags:
        raise MlflowError(
            f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
        )
    call.store.delete_run_tag(run_id, key)


@operation(router, "POST", f"{API}/runs/log-batch", "editor")
def log_batch(call: Call) -> None:
    """Params, metrics and tags of one run, within MLflow's limits, all or nothing."""
    args = call.args
    if args.size > MAX_BATCH_REQUEST_BYTES:
        raise MlflowError(
            f"Batched logging API requests must be at most {MAX_BATCH_REQUEST_BYTES} bytes, got "
            f"a request of size {args.size}."
        )
    run_id = args.text("run_id", required=True)
    metrics, params, tags = args.objects("metrics"), args.objects("params"), args.objects("tags")
    for what, items, most in (
        ("metrics", metrics, MAX_METRICS_PER_BATCH),
        ("params", params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", tags, MAX_PARAMS_TAGS_PER_BATCH),
    ):
        _check_batch_limit(what, len(items), most)
    _check_batch_limit(
        "metrics, params, and tags", len(metrics) + len(params) + len(tags), MAX_ENTITIES_PER_BATCH
    )
    param_values: dict[str, str] = {}
    duplicates = []
    for index, item in enumerate(params):
        key = _item_key(item, "params", index)
        if key in param_values:
            duplicates.append(key)
        param_values[key] = text_value(item.get("value"), f"params[{index}].value")
    if duplicates:
        raise MlflowError(
            f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure the "
            "request contains only one param value per param key."
        )
    tag_values = {
        _item_key(item, "tags", index): text_value(item.get("value"), f"tags[{index}].value")
        for index, item in enumerate(tags)
    }
    now = now_ms()
    points = []
    for index, item in enumerate(metrics):
        key = _item_key(item, "metrics", index)
        if "value" not in item:
            raise MlflowError(f"Missing value for required parameter 'metrics[{index}].value'.")
        point = Metric(
            key,
            number(item["value"], f"metrics[{index}].value"),
            integer(item.get("step"), f"metrics[{index}].step"),
            integer(item.get("timestamp"), f"metrics[{index}].timestamp") or now,
        )
        model_id = item.get("model_id")
        points.append((point, model_id if isinstance(model_id, str) and model_id else None))
    _log(call, run_id, points, param_values, tag_values)


def _check_batch_limit(what: str, length: int, most: int) -> None:
    if length > most:
        raise MlflowError(
            f"A batch logging request can contain at most {most} {what}. Got {length} {what}. "
            f"Please split up {what} across multiple requests and try again."
        )


def _item_key(item: Mapping[str, Any], what: str, index: int) -> str:
    key = item.get("key")
    if not isinstance(key, str) or not key:
        raise MlflowError(f"Missing value for required parameter '{what}[{index}].key'.")
    return key


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise MlflowError(
                f"Tag '{key}' has a value of {len(value)} characters: at most "
                f"{MAX_TAG_VALUE_LENGTH} are allowed."
            )


def _log(
    call: Call,
    run_id: str,
    points: list[tuple[Metric, str | None]],
    params: Mapping[str, str],
    tags: Mapping[str, str],
) -> None:
    """Write to a run in one transaction; metrics that name a logged model are its metrics
    too (MLflow's client copies a run's metrics to a model it logs: a copy already in the
    run's history is not appended again)."""
    if not is_id(run_id):
        raise MlflowError(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
    for key, value in params.items():
        if len(value) > MAX_PARAM_VALUE_LENGTH:
            raise MlflowError(
                f"Param '{key}' has a value of {len(value)} characters: at most "
                f"{MAX_PARAM_VALUE_LENGTH} are allowed."
            )
    _check_tags(tags)
    run_points = [p for p, model_id in points if model_id is None]
    by_model: dict[str, list[Metric]] = {}
    for point, model_id in points:
        if model_id is not None:
            by_model.setdefault(model_id, []).append(point)
    if by_model:
        run_points += _new_points(call, run_id, [p for ps in by_model.values() for p in ps])
    call.store.log_batch(run_id, params=params, metrics=run_points, tags=tags)
    if RUN_NAME_TAG in tags:
        call.store.update_run(run_id, name=tags[RUN_NAME_TAG])
    for model_id, model_points in by_model.items():
        model_run = logged_model_run(call, model_id)
        call.store.log_batch(model_run.id, metrics=model_points)


def _new_points(call: Call, run_id: str, points: list[Metric]) -> list[Metric]:
    """The points not yet in the run's history (same key, step, time and value)."""
    seen: set[tuple[str, int, int, float]] = set()
    for key in {p.key for p in points}:
        seen |= {
            (key, m.step, m.timestamp, m.value) for m in call.store.get_metric_history(run_id, key)
        }
    return [p for p in points if (p.key, p.step, p.timestamp, p.value) not in seen]


def _search_runs(call: Call) -> dict[str, Any]:
    """Runs of experiments matching a filter, sorted and paged in the store."""
    args = call.args
    size = page_size(args.integer("max_results"), 1000, 50_000)
    offset = offset_of(args.text("page_token"))
    experiments = [keel_experiment_id(call, e) for e in args.strings("experiment_ids")]
    parts: list[dict[str, Any]] = [
        {"experiment_id": {"$in": experiments}},
        {f"tags.{LOGGED_MODEL_TAG}": {"$exists": False}},
    ]
    view = _view_type(call, "run_view_type")
    if view == 2:
        parts.append({"lifecycle": "deleted"})
    query = translate(parse_filter(args.text("filter")), RUNS)
    if query:
        parts.append(query)
    sort = [*sort_of(args.strings("order_by"), RUNS), ("start_time", -1)]
    found = call.store.find_runs(
        None, {"$and": parts}, sort, size + 1, offset, include_deleted=view != 1
    )
    page, token = paged(found, offset, size)
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {"runs": [run_json(r, ids) for r in page]}
    if token:
        reply["next_page_token"] = token
    return reply


operation(router, "POST", f"{API}/runs/search", "viewer")(_search_runs)


@operation(router, "POST", f"{API}/runs/outputs", "editor")
def log_outputs(call: Call) -> None:
    """Link logged models to a run: keel's logged models already belong to the run that
    logged them, so this only checks that the run and the models exist."""
    get_run(call, call.args.text("run_id", required=True))
    for index, item in enumerate(call.args.objects("models")):
        model_id = item.get("model_id")
        if not isinstance(model_id, str):
            raise MlflowError(f"Missing value for required parameter 'models[{index}].model_id'.")
        logged_model_run(call, model_id)


@operation(router, "GET", f"{API}/metrics/get-history", "viewer")
def get_metric_history(call: Call) -> dict[str, Any]:
    """Every point of a metric, by step then time (paged when ``max_results`` is given)."""
    args = call.args
    run_id = args.run_id()
    get_run(call, run_id)
    key = args.text("metric_key", required=True)
    points = call.store.get_metric_history(run_id, key)
    offset = offset_of(args.text("page_token"))
    size = args.integer("max_results")
    if size is not None and size <= 0:
        raise MlflowError(
            f"Invalid value {size} for parameter 'max_results' supplied. It must be a positive "
            "integer."
        )
    page = points[offset:] if size is None else points[offset : offset + size]
    reply: dict[str, Any] = {
        "metrics": [metric_json(m.key, m.value, m.step, m.timestamp) for m in page]
    }
    if size is not None and offset + size < len(points):
        reply["next_page_token"] = page_token(offset + size)
    return reply
