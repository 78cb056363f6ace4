"""Datasets on an MLflow server, which has no dataset registry: each version is a run of the
project's reserved experiment ``[<project>~].keel-datasets`` with its fields in ``keel.*``
tags, its files recorded like a run's, its lineage in ``keel.used_by.<run id>`` tags (and as
an MLflow dataset input of the using run, which the MLflow UI shows). Functions of
:class:`~keel.store.mlflow.store.MlflowStore`, which delegates to them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.entities import ArtifactFile, Dataset, Run
from keel.errors import Conflict, InvalidInput, NotFound
from keel.store.base import Sort
from keel.store.matching import DATASET, Lazy, check_sort, compile_query, page, sort_records
from keel.store.mlflow import codec as c
from keel.store.validation import check_name

if TYPE_CHECKING:
    from keel.store.mlflow.store import MlflowStore

PAGE_SIZE = 1000
MAX_TAGS_PER_BATCH = 100
_USED_BY = "keel.used_by."


def _datasets_experiment(store: MlflowStore, project: str, create: bool) -> str | None:
    """The id of the project's reserved dataset experiment (made on first write)."""
    if project in store._dataset_experiments:
        return store._dataset_experiments[project]
    check_name(project, "project")
    found = store._experiment_by_name(project, c.DATASETS)
    if found is None:
        if not create:
            return None
        body = {
            "name": c.qualified(project, c.DATASETS),
            "tags": c.as_items({"keel.reserved": "dataset versions of keel project"}),
        }
        try:
            found = {
                "experiment_id": store._call("POST", "experiments/create", body)["experiment_id"]
            }
        except Conflict:
            found = store._experiment_by_name(project, c.DATASETS)
            if found is None:
                raise
    store._dataset_experiments[project] = str(found["experiment_id"])
    return store._dataset_experiments[project]


def _dataset_records(
    store: MlflowStore, experiment_ids: list[str], filter_: str = ""
) -> list[dict[str, Any]]:
    if not experiment_ids:
        return []
    body = {
        "experiment_ids": experiment_ids,
        "filter": filter_,
        "run_view_type": "ACTIVE_ONLY",
        "max_results": PAGE_SIZE,
    }
    return [r for r in store._pages("runs/search", body, "runs") if c.is_dataset_record(r)]


def create_dataset(
    store: MlflowStore,
    project: str,
    name: str,
    *,
    content_hash: str,
    files: Sequence[ArtifactFile],
    run_id: str | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    author: str = "",
    allow_duplication: bool = False,
) -> tuple[Dataset, bool]:
    check_name(name, "dataset")
    texts, kinds = c.encode_values(tags, "tag", c.MAX_RUN_TAG_VALUE)
    experiment_id = _datasets_experiment(store, project, create=True)
    assert experiment_id is not None
    by_name = f"tags.`keel.dataset.name` = {c.literal(name)}"
    if not allow_duplication:
        same = _dataset_records(
            store,
            [experiment_id],
            f"{by_name} AND tags.`keel.content_hash` = {c.literal(content_hash)}",
        )
        if same:
            first = min((c.dataset(r, project) for r in same), key=lambda d: d.version)
            if run_id is not None:
                link_dataset(store, first.id, run_id, "output")
            return first, False
    if run_id is not None:
        store._run_raw(run_id)
    versions = [
        c.dataset(r, project).version for r in _dataset_records(store, [experiment_id], by_name)
    ]
    version = max(versions, default=0) + 1
    system = {
        "keel.kind": "dataset",
        "keel.dataset.name": name,
        "keel.dataset.version": str(version),
        "keel.content_hash": content_hash,
        **c.put_long("keel.description", description, c.MAX_RUN_TAG_VALUE),
    }
    if author:
        system["mlflow.user"] = author
    if run_id is not None:
        system["keel.dataset.run_id"] = run_id
        system[_USED_BY + run_id] = "output"
    types = c.merged_types({}, kinds)
    if types:
        system.update(c.put_long(c.TAG_TYPES, c.dumps(types), c.MAX_RUN_TAG_VALUE))
    all_tags = {**texts, **system}
    first_tags = dict(list(all_tags.items())[:MAX_TAGS_PER_BATCH])
    answer = store._call(
        "POST",
        "runs/create",
        {
            "experiment_id": experiment_id,
            "run_name": f"{name} v{version}",
            "user_id": author,
            "start_time": c.now_ms(),
            "tags": c.as_items(first_tags),
        },
    )
    record_id = str(answer["run"]["info"]["run_id"])
    rest = {k: v for k, v in all_tags.items() if k not in first_tags}
    if rest:
        store._send_batches(record_id, [], rest, [])
    store._call("POST", "runs/update", {"run_id": record_id, "status": "FINISHED"})
    store.record_artifacts("dataset", record_id, files)
    _settle_version(store, experiment_id, project, name, record_id)
    return _dataset(store, record_id, project), True


def _settle_version(
    store: MlflowStore, experiment_id: str, project: str, name: str, record_id: str
) -> None:
    """Give a new record the next free number when a concurrent writer took its number
    (the earlier record keeps it): versions stay unique and gapless."""
    by_name = f"tags.`keel.dataset.name` = {c.literal(name)}"
    for _ in range(20):
        records = [c.dataset(r, project) for r in _dataset_records(store, [experiment_id], by_name)]
        mine = next((d for d in records if d.id == record_id), None)
        if mine is None:
            return
        rivals = [
            d
            for d in records
            if d.version == mine.version and (d.created_at, d.id) < (mine.created_at, mine.id)
        ]
        if not rivals:
            return
        version = max(d.version for d in records) + 1
        store._send_batches(record_id, [], {"keel.dataset.version": str(version)}, [])
        store._call("POST", "runs/update", {"run_id": record_id, "run_name": f"{name} v{version}"})


def _dataset_raw(store: MlflowStore, dataset_id: str) -> dict[str, Any]:
    try:
        raw = store._run_raw(dataset_id, "dataset")
    except InvalidInput:
        raise NotFound(f"no dataset with id {dataset_id!r}") from None
    if not c.is_dataset_record(raw):
        raise NotFound(f"no dataset with id {dataset_id!r}")
    return raw


def _dataset(store: MlflowStore, dataset_id: str, project: str | None = None) -> Dataset:
    raw = _dataset_raw(store, dataset_id)
    if project is None:
        exp = store._experiment_raw(str(raw["info"]["experiment_id"]))
        project = c.split_name(str(exp["name"]))[0]
    return c.dataset(raw, project)


def get_dataset(
    store: MlflowStore, project: str, name: str, version: int | str = "latest"
) -> Dataset:
    check_name(name, "dataset")
    text = str(version)
    if text != "latest" and not text.isdigit():
        raise InvalidInput(f"dataset version must be a number or 'latest', got {text!r}")
    experiment_id = _datasets_experiment(store, project, create=False)
    filter_ = f"tags.`keel.dataset.name` = {c.literal(name)}"
    if text != "latest":
        filter_ += f" AND tags.`keel.dataset.version` = '{int(text)}'"
    found = [
        c.dataset(r, project)
        for r in _dataset_records(store, [experiment_id] if experiment_id else [], filter_)
    ]
    if not found:
        raise NotFound(f"no dataset {name!r} version {text} in project {project!r}")
    if text == "latest":
        return max(found, key=lambda d: (d.version, d.created_at))
    return min(found, key=lambda d: (d.created_at, d.id))


def find_datasets(
    store: MlflowStore,
    project: str | None,
    query: Mapping[str, Any] | None = None,
    sort: Sort | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Dataset]:
    match = compile_query(query, DATASET)
    check_sort(sort, DATASET)
    page([], limit, offset)
    reserved = {e.id: e.project for e in store._experiments(project, datasets=True)}
    found: dict[str, Dataset] = {}
    runs: dict[str, Run | None] = {}
    records = []
    for raw in _dataset_records(store, list(reserved)):
        ds = c.dataset(raw, reserved[str(raw["info"]["experiment_id"])])
        found[ds.id] = ds
        records.append(c.record(ds, run=Lazy(_lazy_run(store, ds.run_id, runs))))
    records = [r for r in records if match(r) is True]
    ordered = sort_records(records, sort or [("name", 1), ("version", 1)], DATASET)
    return [found[r["id"]] for r in page(ordered, limit, offset)]


def _lazy_run(
    store: MlflowStore, run_id: str | None, cache: dict[str, Run | None]
) -> Callable[[], dict[str, Any] | None]:
    def make() -> dict[str, Any] | None:
        if run_id is None:
            return None
        if run_id not in cache:
            try:
                cache[run_id] = store.get_run(run_id)
            except NotFound:
                cache[run_id] = None
        found = cache[run_id]
        return None if found is None else store._run_record(found, {})

    return make


def link_dataset(store: MlflowStore, dataset_id: str, run_id: str, role: str = "input") -> None:
    if role not in ("input", "output"):
        raise InvalidInput(f"dataset role must be 'input' or 'output', got {role!r}")
    record = _dataset_raw(store, dataset_id)
    run = store._run_raw(run_id)
    raw = c.pairs(record.get("data", {}).get("tags"))
    roles = set(filter(None, raw.get(_USED_BY + run_id, "").split(",")))
    if role not in roles:
        roles.add(role)
        store._send_batches(dataset_id, [], {_USED_BY + run_id: ",".join(sorted(roles))}, [])
    if role == "input" and run["info"].get("lifecycle_stage") == "active":
        # MLflow's own record of what a run read: its UI lists it under the run's datasets
        ds = c.dataset(record, "")
        source = {
            "keel_dataset": ds.name,
            "version": ds.version,
            "content_hash": ds.content_hash,
        }
        store._call(
            "POST",
            "runs/log-inputs",
            {
                "run_id": run_id,
                "datasets": [
                    {
                        "tags": [{"key": "mlflow.data.context", "value": role}],
                        "dataset": {
                            "name": ds.name,
                            "digest": dataset_id,
                            "source_type": "keel",
                            "source": json.dumps(source),
                        },
                    }
                ],
            },
        )


def dataset_runs(store: MlflowStore, dataset_id: str) -> list[tuple[str, str]]:
    raw = c.pairs(_dataset_raw(store, dataset_id).get("data", {}).get("tags"))
    pairs = [
        (key[len(_USED_BY) :], role)
        for key, value in raw.items()
        if key.startswith(_USED_BY)
        for role in value.split(",")
        if role
    ]
    return sorted(pairs, key=lambda p: (p[1], p[0]))
