"""MLflow 3's logged models, kept as keel runs (see :mod:`.records` for the mapping).

``mlflow.<flavor>.log_model`` creates a logged model, uploads its files to the model's
``artifact_uri`` through the ``mlflow-artifacts`` proxy, copies the run's metrics to it and
marks it ready; registering ``runs:/<run>/<name>`` finds it again by searching the logged
models of the run's experiment. Each of those calls is one route here: create, get, finalize
(status), delete, search, tags, params.

A metric logged to a model (``log_metric(..., model_id=…, dataset_name=…)``) is a point of
the model run's metric history (its value, step and time). What keel's history has no
column for, the run it was logged from and the dataset it was measured on, is kept for the
points that have them in the model run's hidden tag ``mlflow.keel.metricContexts``; the
points logged from the model's source run on no dataset (a training loop's) need no entry.
Search's ``datasets`` filter and ``order_by`` on a dataset's metric are read from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import NotFound
from keel.server.mlflow.protocol import (
    RESOURCE_DOES_NOT_EXIST,
    Call,
    MlflowError,
    float_json,
    new_router,
    operation,
)
from keel.server.mlflow.records import (
    DEFAULT_EXPERIMENT_ID,
    KEEL_TAG_PREFIX,
    LOGGED_MODEL_STATUS,
    LOGGED_MODEL_STATUS_FROM_MLFLOW,
    LOGGED_MODEL_TAG,
    MODEL_ID_PREFIX,
    MODEL_TYPE_TAG,
    PRIVATE_TAG_PREFIX,
    SOURCE_RUN_TAG,
    ExperimentIds,
    is_id,
    keel_experiment_id,
    logged_model_json,
    logged_model_run,
    model_id_of,
    new_id,
    now_ms,
    text,
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

if TYPE_CHECKING:
    from keel.entities import Metric, Run

router = new_router()  # under /api/2.0
API = "/mlflow/logged-models"
#: [[key, step, timestamp, value, run id, dataset name, dataset digest]…] of a model's points
#: logged from another run than its source run, or on a dataset
CONTEXTS_TAG = KEEL_TAG_PREFIX + "metricContexts"
#: how many models a search reads to filter or sort by datasets in Python (a page of
#: MLflow's search is at most 50,000 models too)
MAX_DATASET_SEARCH = 50_000


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
    private = [key for key in tags if key.startswith((PRIVATE_TAG_PREFIX, KEEL_TAG_PREFIX))]
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
        # MLflow keeps any source run id, one it does not have too: so does keel (the model
        # is a child of its source run only when that run is in the model's experiment)
        tags[SOURCE_RUN_TAG] = source
        if is_id(source):
            found = call.store.find_runs(None, {"id": source}, limit=1, include_deleted=True)
            if found and found[0].experiment_id == exp_id:
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
    return {"model": model_json(call, call.store.get_run(run_id), ExperimentIds(call))}


@operation(router, "GET", API + "/{model_id}", "viewer")
def get_logged_model(call: Call) -> dict[str, Any]:
    model_id = call.request.path_params["model_id"]
    run = logged_model_run(call, model_id, allow_deleted=call.args.boolean("allow_deleted"))
    return {"model": model_json(call, run, ExperimentIds(call))}


@operation(router, "PATCH", API + "/{model_id}", "editor")
def finalize_logged_model(call: Call) -> dict[str, Any]:
    """Set a logged model's status (READY ends its run as finished)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    status = _status(call.args.text("status", required=True))
    if LOGGED_MODEL_STATUS.get(run.status) != call.args.text("status"):
        end = now_ms() if status != "running" else None
        run = call.store.update_run(run.id, status=status, end_time=end)
    return {"model": model_json(call, run, ExperimentIds(call))}


@operation(router, "DELETE", API + "/{model_id}", "editor")
def delete_logged_model(call: Call) -> None:
    """Mark a logged model's run deleted (versions registered from it keep their files)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    call.store.update_run(run.id, lifecycle="deleted")


@operation(router, "POST", API + "/search", "viewer")
def search_logged_models(call: Call) -> dict[str, Any]:
    """Logged models of experiments, filtered, sorted and paged in the store; a ``datasets``
    filter, or an order by a metric on a dataset, is applied to the matching models here."""
    args = call.args
    datasets = _dataset_filters(args.objects("datasets"))
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
    orders = [_order(index, item) for index, item in enumerate(args.objects("order_by"))]
    ids = ExperimentIds(call)
    if datasets is None and not any(o.dataset for o in orders):
        sort = [(o.column, o.direction) for o in orders] + [("created_at", -1)]
        found = call.store.find_runs(None, {"$and": parts}, sort, size + 1, offset)
    else:
        found = call.store.find_runs(
            None, {"$and": parts}, [("created_at", -1)], MAX_DATASET_SEARCH + 1
        )
        if len(found) > MAX_DATASET_SEARCH:
            raise MlflowError(
                f"More than {MAX_DATASET_SEARCH} logged models match: narrow the search with a "
                "filter before filtering or sorting by datasets"
            )
        if datasets is not None:
            found = [r for r in found if _on_datasets(r, datasets)]
        for order in reversed(orders):  # stable sorts, the first order last
            found = _sorted(found, order)
        found = found[offset : offset + size + 1]
    page, token = paged(found, offset, size)
    reply: dict[str, Any] = {"models": [model_json(call, r, ids) for r in page]}
    if token:
        reply["next_page_token"] = token
    return reply


@dataclass(frozen=True)
class _Order:
    """One ``order_by`` item: a store sort column, and the dataset it is measured on."""

    column: str
    direction: int
    dataset: tuple[str, str | None] | None = None


def _order(index: int, item: Mapping[str, Any]) -> _Order:
    name = item.get("field_name")
    if not isinstance(name, str) or not name:
        raise MlflowError(f"Missing value for required parameter 'order_by[{index}].field_name'.")
    direction = 1 if item.get("ascending", True) else -1
    head, _, rest = name.partition(".")
    if rest and head in ("metrics", "params", "tags"):
        dataset_name, digest = item.get("dataset_name"), item.get("dataset_digest")
        if head == "metrics" and (dataset_name or digest):
            return _Order(name, direction, (str(dataset_name or ""), digest or None))
        return _Order(name, direction)
    column = LOGGED_MODELS.order_attributes.get(rest if head == "attributes" else name, "")
    if not column:
        raise MlflowError(f"Invalid order by field name: {name}")
    return _Order(column, direction)


def _dataset_filters(items: list[dict[str, Any]]) -> list[tuple[str, str | None]] | None:
    if not items:
        return None
    if not all(isinstance(d.get("dataset_name"), str) and d["dataset_name"] for d in items):
        raise MlflowError("`dataset_name` in the `datasets` clause must be specified.")
    return [(d["dataset_name"], d.get("dataset_digest") or None) for d in items]


def _contexts(run: Run) -> list[list[Any]]:
    found = run.tags.get(CONTEXTS_TAG)
    return [c for c in found if len(c) == 7] if isinstance(found, list) else []


def _on(context: Sequence[Any], dataset: tuple[str, str | None]) -> bool:
    name, digest = dataset
    return context[5] == name and (digest is None or context[6] == digest)


def _on_datasets(run: Run, datasets: list[tuple[str, str | None]]) -> bool:
    """Whether a model has a metric measured on one of ``datasets``."""
    return any(_on(c, d) for c in _contexts(run) for d in datasets)


def _sort_value(run: Run, order: _Order) -> Any:
    if order.dataset is not None:  # the latest point of the metric on that dataset
        key = order.column.partition(".")[2]
        points = [c for c in _contexts(run) if c[0] == key and _on(c, order.dataset)]
        return max(points, key=lambda c: (c[2], c[1]))[3] if points else None
    head, _, rest = order.column.partition(".")
    if head in ("metrics", "params", "tags") and rest:
        return {"metrics": run.metrics, "params": run.params, "tags": run.tags}[head].get(rest)
    return getattr(run, order.column, None)


def _sorted(runs: list[Run], order: _Order) -> list[Run]:
    """Runs by one order, values missing (or not comparable) last, as MLflow's nulls."""
    have, missing = [], []
    for run in runs:
        value = _sort_value(run, order)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isnan(value):
                have.append((0, float(value), "", run))
                continue
        elif isinstance(value, str):
            have.append((1, 0.0, value, run))
            continue
        missing.append(run)
    have.sort(key=lambda v: (v[0], v[1], v[2]), reverse=order.direction < 0)
    return [v[3] for v in have] + missing


# --- a model's metrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelTarget:
    """Where a metric point that names a logged model goes: the model, and the dataset the
    point was measured on (MLflow's ``dataset_name`` and ``dataset_digest``)."""

    model_id: str
    dataset_name: str = ""
    dataset_digest: str = ""


def model_target(model_id: Any, dataset_name: Any, dataset_digest: Any) -> ModelTarget | None:
    """The target of a metric point from its request fields (None: no model)."""
    if not isinstance(model_id, str) or not model_id:
        return None
    return ModelTarget(
        model_id,
        dataset_name if isinstance(dataset_name, str) else "",
        dataset_digest if isinstance(dataset_digest, str) else "",
    )


def log_model_metrics(
    call: Call, run_id: str, points: Iterable[tuple[Metric, ModelTarget]]
) -> None:
    """Append points to the histories of the models they name, keeping the run they were
    logged from and their dataset where that is not the model's default (its source run,
    no dataset). A point given twice in one request is logged once, as in MLflow."""
    by_model: dict[str, list[tuple[Metric, ModelTarget]]] = {}
    for point, target in points:
        by_model.setdefault(target.model_id, []).append((point, target))
    for model_id, items in by_model.items():
        model_run = logged_model_run(call, model_id)
        source = model_run.tags.get(SOURCE_RUN_TAG)
        metrics: list[Metric] = []
        contexts = _contexts(model_run)
        added = False
        seen: set[tuple[Any, ...]] = set()
        for point, target in items:
            key = (point.key, point.step, point.timestamp, point.value, target)
            if key in seen:
                continue
            seen.add(key)
            metrics.append(point)
            if target.dataset_name or target.dataset_digest or run_id != source:
                contexts.append(
                    [
                        point.key,
                        point.step,
                        point.timestamp,
                        point.value,
                        run_id,
                        target.dataset_name,
                        target.dataset_digest,
                    ]
                )
                added = True
        tags = {CONTEXTS_TAG: contexts} if added else {}
        call.store.log_batch(model_run.id, metrics=metrics, tags=tags)


def _model_metrics(call: Call, run: Run) -> list[dict[str, Any]]:
    """Every point of a model's metrics, with the run and dataset each was logged from."""
    source = run.tags.get(SOURCE_RUN_TAG)
    default_run = text(source) if source else run.id
    pending: dict[tuple[str, int, int], list[list[Any]]] = {}
    for context in _contexts(run):
        pending.setdefault((context[0], context[1], context[2]), []).append(context)
    model_id = model_id_of(run.id)
    found = []
    for key in run.metrics:
        try:
            history = call.store.get_metric_history(run.id, key)
        except NotFound:
            continue
        for point in history:
            waiting = pending.get((key, point.step, point.timestamp))
            context = waiting.pop(0) if waiting else None
            item: dict[str, Any] = {
                "key": key,
                "value": float_json(point.value),
                "timestamp": point.timestamp,
                "step": point.step,
                "model_id": model_id,
                "run_id": str(context[4]) if context else default_run,
            }
            if context and context[5]:
                item["dataset_name"] = context[5]
            if context and context[6]:
                item["dataset_digest"] = context[6]
            found.append(item)
    return found


def model_json(call: Call, run: Run, ids: ExperimentIds) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel``, with every point of its metrics."""
    found = logged_model_json(run, ids)
    found["data"]["metrics"] = _model_metrics(call, run)
    return found


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
    if key not in run.tags or key.startswith(KEEL_TAG_PREFIX):
        raise MlflowError(
            f"No tag with key {key!r} found for model with ID {model_id_of(run.id)!r}.",
            RESOURCE_DOES_NOT_EXIST,
        )
    call.store.delete_run_tag(run.id, key)


@operation(router, "POST", API + "/{model_id}/params", "editor")
def log_logged_model_params(call: Call) -> None:
    """Params of a logged model (write-once, as a run's)."""
    run = logged_model_run(call, call.request.path_params["model_id"])
    params = call.args.key_values("params")
    if params:
        call.store.log_batch(run.id, params=params)
