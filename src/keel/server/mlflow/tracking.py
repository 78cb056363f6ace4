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

from keel.entities import Metric, Run
from keel.errors import Conflict, NotFound
from keel.server.mlflow.artifacts import requested_location
from keel.server.mlflow.datasets import run_inputs_outputs
from keel.server.mlflow.logged_models import ModelTarget, log_model_metrics, model_target
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
    ARTIFACT_LOCATION_TAG,
    DEFAULT_EXPERIMENT_ID,
    LOGGED_MODEL_TAG,
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    STATUS_FROM_MLFLOW,
    ExperimentIds,
    default_experiment,
    experiment_json,
    get_run,
    is_id,
    keel_experiment_id,
    metric_json,
    new_id,
    now_ms,
    run_info_json,
    run_json,
    user_tag_key,
    user_tags,
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


@operation(router, "POST", f"{API}/experiments/create", "editor", "CreateExperiment")
def create_experiment(call: Call) -> dict[str, Any]:
    """Create an experiment in the server's project (an ``artifact_location`` is kept as
    given, see :mod:`.artifacts`)."""
    name = call.args.text("name", required=True)
    tags = dict(user_tags(call.args.key_values("tags")))
    location = call.args.text("artifact_location")
    if location:
        tags = {**tags, ARTIFACT_LOCATION_TAG: requested_location(location)}
    try:
        exp = call.store.create_experiment(call.project, name, tags)
    except Conflict:
        raise MlflowError(f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS) from None
    return {"experiment_id": ExperimentIds(call)(exp.id)}


@operation(router, "GET", f"{API}/experiments/get", "viewer", "GetExperiment")
def get_experiment(call: Call) -> dict[str, Any]:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    return {"experiment": experiment_json(call.store.get_experiment(exp_id), ExperimentIds(call))}


@operation(router, "GET", f"{API}/experiments/get-by-name", "viewer", "GetExperimentByName")
def get_experiment_by_name(call: Call) -> dict[str, Any]:
    name = call.args.text("experiment_name", required=True)
    default_experiment(call, create=True)  # a fresh store has its Default, as MLflow's does
    found = call.store.find_experiments(call.project, {"name": name}, limit=1)
    if not found:
        raise MlflowError(f"Could not find experiment with name '{name}'", RESOURCE_DOES_NOT_EXIST)
    return {"experiment": experiment_json(found[0], ExperimentIds(call))}


def _search_experiments(call: Call) -> dict[str, Any]:
    args = call.args
    default_experiment(call, create=True)  # a fresh store lists its Default, as MLflow's does
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


operation(router, "POST", f"{API}/experiments/search", "viewer", "SearchExperiments")(
    _search_experiments
)
operation(router, "GET", f"{API}/experiments/search", "viewer", "SearchExperiments")(
    _search_experiments
)


def _lifecycle(call: Call, lifecycle: str) -> None:
    mlflow_id = call.args.text("experiment_id", required=True)
    if lifecycle == "deleted" and mlflow_id == DEFAULT_EXPERIMENT_ID:
        raise MlflowError(
            "Cannot delete the default experiment '0'. This is an internal experiment."
        )
    call.store.set_experiment_lifecycle(keel_experiment_id(call, mlflow_id), lifecycle)


@operation(router, "POST", f"{API}/experiments/delete", "editor", "DeleteExperiment")
def delete_experiment(call: Call) -> None:
    """Mark an experiment deleted (its runs are left as they are)."""
    _lifecycle(call, "deleted")


@operation(router, "POST", f"{API}/experiments/restore", "editor", "RestoreExperiment")
def restore_experiment(call: Call) -> None:
    _lifecycle(call, "active")


@operation(router, "POST", f"{API}/experiments/update", "editor", "UpdateExperiment")
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


@operation(router, "POST", f"{API}/experiments/set-experiment-tag", "editor", "SetExperimentTag")
def set_experiment_tag(call: Call) -> None:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    key = user_tag_key(call.args.text("key", required=True))
    value = text_value(call.args.data.get("value"), "value")
    call.store.set_experiment_tags(exp_id, {key: value})


@operation(
    router, "POST", f"{API}/experiments/delete-experiment-tag", "editor", "DeleteExperimentTag"
)
def delete_experiment_tag(call: Call) -> None:
    exp_id = keel_experiment_id(call, call.args.text("experiment_id", required=True))
    call.store.delete_experiment_tag(exp_id, user_tag_key(call.args.text("key", required=True)))


# --- runs ------------------------------------------------------------------------------------


@operation(router, "POST", f"{API}/runs/create", "editor", "CreateRun")
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


@operation(router, "GET", f"{API}/runs/get", "viewer", "GetRun")
def get_run_route(call: Call) -> dict[str, Any]:
    run = get_run(call, call.args.run_id())
    found = run_json(run, ExperimentIds(call))
    found["inputs"], found["outputs"] = run_inputs_outputs(call, run)  # see .datasets
    return {"run": found}


@operation(router, "POST", f"{API}/runs/update", "editor", "UpdateRun")
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


@operation(router, "POST", f"{API}/runs/delete", "editor", "DeleteRun")
def delete_run(call: Call) -> None:
    """Mark a run deleted (``keel gc`` purges it later)."""
    run_id = call.args.run_id()
    get_run(call, run_id)
    call.store.update_run(run_id, lifecycle="deleted")


@operation(router, "POST", f"{API}/runs/restore", "editor", "RestoreRun")
def restore_run(call: Call) -> None:
    run_id = call.args.run_id()
    get_run(call, run_id)
    call.store.update_run(run_id, lifecycle="active")


@operation(router, "POST", f"{API}/runs/log-metric", "editor", "LogMetric")
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
    target = model_target(
        args.text("model_id"), args.text("dataset_name"), args.text("dataset_digest")
    )
    _log(call, args.run_id(), [(point, target)], {}, {})


@operation(router, "POST", f"{API}/runs/log-parameter", "editor", "LogParam")
def log_param(call: Call) -> None:
    """Log a param; a different value for a logged key is refused (params are write-once)."""
    args = call.args
    key = args.text("key", required=True)
    value = text_value(args.data.get("value"), "value")
    _log(call, args.run_id(), [], {key: value}, {})


@operation(router, "POST", f"{API}/runs/set-tag", "editor", "SetTag")
def set_tag(call: Call) -> None:
    """Set a tag; ``mlflow.runName`` also renames the run."""
    args = call.args
    key = args.text("key", required=True)
    value = text_value(args.data.get("value"), "value")
    _log(call, args.run_id(), [], {}, {key: value})


@operation(router, "POST", f"{API}/runs/delete-tag", "editor", "DeleteTag")
def delete_tag(call: Call) -> None:
    args = call.args
    run_id = args.run_id()
    key = user_tag_key(args.text("key", required=True))
    run = get_run(call, run_id)
    _check_active(run)
    if key not in run.tags:
        raise MlflowError(
            f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
        )
    call.store.delete_run_tag(run_id, key)


@operation(router, "POST", f"{API}/runs/log-batch", "editor", "LogBatch")
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
    for index, item in enumerate(metrics):  # MLflow's order: every metric's fields first
        for name in ("key", "value", "timestamp"):
            if item.get(name) in (None, ""):
                raise MlflowError(
                    f"Missing value for required parameter 'metrics[{index}].{name}'. "
                    "See the API docs for more information about request parameters."
                )
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
    points = []
    for index, item in enumerate(metrics):
        point = Metric(
            _item_key(item, "metrics", index),
            number(item["value"], f"metrics[{index}].value"),
            integer(item.get("step"), f"metrics[{index}].step"),
            integer(item["timestamp"], f"metrics[{index}].timestamp"),
        )
        model_id = item.get("model_id")
        target = model_target(model_id, item.get("dataset_name"), item.get("dataset_digest"))
        points.append((point, target))
    _log(call, run_id, points, param_values, tag_values)


def _check_active(run: Run) -> None:
    """MLflow's refusal to change a deleted run."""
    if run.lifecycle != "active":
        raise MlflowError(
            f"The run {run.id} must be in the 'active' state. Current state is {run.lifecycle}."
        )


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
    for key, value in user_tags(tags).items():
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise MlflowError(
                f"Tag '{key}' has a value of {len(value)} characters: at most "
                f"{MAX_TAG_VALUE_LENGTH} are allowed."
            )


def _log(
    call: Call,
    run_id: str,
    points: list[tuple[Metric, ModelTarget | None]],
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
    run_points = [p for p, target in points if target is None]
    model_points = [(p, target) for p, target in points if target is not None]
    if model_points:
        run_points += _new_points(call, run_id, [p for p, _target in model_points])
    try:
        call.store.log_batch(run_id, params=params, metrics=run_points, tags=tags)
    except Conflict:
        _check_active(call.store.get_run(run_id))  # a deleted run: say so as MLflow does
        raise
    if RUN_NAME_TAG in tags:
        call.store.update_run(run_id, name=tags[RUN_NAME_TAG])
    if model_points:  # with the run and dataset of each point: see .logged_models
        log_model_metrics(call, run_id, model_points)


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


operation(router, "POST", f"{API}/runs/search", "viewer", "SearchRuns")(_search_runs)


@operation(router, "GET", f"{API}/metrics/get-history", "viewer", "GetMetricHistory")
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


MAX_BULK_RUNS = 100
MAX_BULK_HISTORY = 25_000
MAX_INTERVAL_RESULTS = 2500  # MLflow's MAX_RESULTS_PER_RUN


@operation(router, "GET", f"{API}/metrics/get-history-bulk", "viewer")
def get_metric_history_bulk(call: Call) -> dict[str, Any]:
    """A metric's points in several runs (MLflow's UI calls it under ``/ajax-api``): by run
    id, then time, step and value; runs that do not exist have none."""
    args = call.args
    run_ids = args.strings("run_id")
    if not run_ids:
        raise MlflowError("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise MlflowError(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = args.text("metric_key")
    if key is None:
        raise MlflowError("GetMetricHistoryBulk request must specify a metric_key.")
    size = min(args.integer("max_results", default=MAX_BULK_HISTORY), MAX_BULK_HISTORY)
    found: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        if len(found) >= size:
            break
        if not is_id(run_id):
            continue
        try:
            points = call.store.get_metric_history(run_id, key)
        except NotFound:
            continue
        points.sort(key=lambda m: (m.timestamp, m.step, m.value))
        found += [{**_point_json(m), "run_id": run_id} for m in points]
    return {"metrics": found[:size]}


@operation(
    router,
    "GET",
    f"{API}/metrics/get-history-bulk-interval",
    "viewer",
    "GetMetricHistoryBulkInterval",
)
def get_metric_history_bulk_interval(call: Call) -> dict[str, Any]:
    """At most ``max_results`` points of a metric per run, evenly spread over its history (or
    over the steps from ``start_step`` to ``end_step``), the first and last always kept: the
    sampling of MLflow's SQL store."""
    args = call.args
    run_ids = args.strings("run_ids")
    if len(run_ids) > MAX_BULK_RUNS:
        raise MlflowError(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} "
            f"run_ids. Received {len(run_ids)} run_ids."
        )
    size = args.integer("max_results", default=MAX_INTERVAL_RESULTS)
    if not 1 <= size <= MAX_INTERVAL_RESULTS:
        raise MlflowError(f"max_results must be between 1 and {MAX_INTERVAL_RESULTS}.")
    key = args.text("metric_key", required=True)
    start, end = args.integer("start_step"), args.integer("end_step")
    if (start is None) != (end is None):
        raise MlflowError("If either start step or end step are specified, both must be specified.")
    if start is not None and start > end:
        raise MlflowError(
            f"end_step must be greater than start_step. Found start_step={start} and "
            f"end_step={end}."
        )
    runs = [get_run(call, run_id) for run_id in run_ids]
    found: list[dict[str, Any]] = []
    for run in runs:
        points = call.store.get_metric_history(run.id, key)
        if start is not None:
            points = [m for m in points if start <= m.step <= end]
        points.sort(key=lambda m: (m.step, m.timestamp, m.value))
        found += [{**_point_json(m), "run_id": run.id} for m in _sampled(points, size)]
    return {"metrics": found}


def _sampled(points: list[Metric], size: int) -> list[Metric]:
    """The first point of each of ``size`` equal buckets (SQL's ``NTILE``), then the last point
    in place of the final one when it is missing."""
    total = len(points)
    if total <= size:
        return points
    big, small = total % size, total // size  # the first `big` buckets hold one more
    starts = [i * (small + 1) if i < big else big * (small + 1) + (i - big) * small
              for i in range(size)]  # fmt: skip
    chosen = [points[i] for i in starts]
    if chosen[-1] is not points[-1]:
        chosen[-1] = points[-1]
    return chosen


def _point_json(m: Metric) -> dict[str, Any]:
    return metric_json(m.key, m.value, m.step, m.timestamp)
