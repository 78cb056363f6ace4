"""Registered models, their versions and aliases on an MLflow server: MLflow's own, with
keel's fields (label, content hash, path in the run, metrics, library versions, author) in
``keel.*`` version tags. Functions of :class:`~keel.store.mlflow.store.MlflowStore`, which
delegates to them (they use its request helpers)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.entities import ModelVersion, RegisteredModel, Run
from keel.errors import Conflict, InvalidInput, NotFound
from keel.store.base import Sort
from keel.store.matching import MODEL, VERSION, Lazy, check_sort, compile_query, page, sort_records
from keel.store.mlflow import codec as c
from keel.store.validation import check_alias, check_label, check_name

if TYPE_CHECKING:
    from keel.store.mlflow.store import MlflowStore

PAGE_SIZE = 1000


def _check_model_name(name: str) -> str:
    check_name(name, "model")
    if "/" in name:
        raise InvalidInput(
            f"invalid model name {name!r} for an MLflow server: MLflow refuses '/' in model names"
        )
    return name


def create_model(
    store: MlflowStore,
    project: str,
    name: str,
    tags: Mapping[str, Any] | None = None,
    description: str = "",
) -> RegisteredModel:
    check_name(project, "project")
    _check_model_name(name)
    texts, kinds = c.encode_values(tags, "tag", c.MAX_MODEL_TAG_VALUE)
    types = c.merged_types({}, kinds)
    if types:
        texts[c.TAG_TYPES] = c.dumps(types)
    body = {
        "name": c.qualified(project, name),
        "tags": c.as_items(texts),
        "description": description,
    }
    try:
        store._call("POST", "registered-models/create", body)
    except Conflict:
        raise Conflict(
            f"model {name!r} already exists in project {project!r}: "
            "use get_or_create_model to reuse it"
        ) from None
    return get_model(store, project, name)


def get_or_create_model(store: MlflowStore, project: str, name: str) -> RegisteredModel:
    try:
        return get_model(store, project, name)
    except NotFound:
        try:
            return create_model(store, project, name)
        except Conflict:
            return get_model(store, project, name)


def _model_raw(store: MlflowStore, project: str, name: str) -> dict[str, Any]:
    _check_model_name(name)
    try:
        answer = store._call("GET", "registered-models/get", name=c.qualified(project, name))
    except NotFound:
        raise NotFound(f"no model named {name!r} in project {project!r}") from None
    return dict(answer["registered_model"])


def get_model(store: MlflowStore, project: str, name: str) -> RegisteredModel:
    return c.registered_model(_model_raw(store, project, name))


def find_models(
    store: MlflowStore,
    project: str | None,
    query: Mapping[str, Any] | None = None,
    sort: Sort | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[RegisteredModel]:
    match = compile_query(query, MODEL)
    check_sort(sort, MODEL)
    page([], limit, offset)
    params: dict[str, Any] = {"max_results": PAGE_SIZE}
    prefix = c.project_prefix(project) if project is not None else None
    if prefix is not None:
        params["filter"] = f"name LIKE '{prefix}'"
    found: dict[str, RegisteredModel] = {}
    for data in store._get_pages("registered-models/search", params, "registered_models"):
        model = c.registered_model(data)
        if project is None or model.project == project:
            found[model.id] = model
    records = [r for r in (c.record(m) for m in found.values()) if match(r) is True]
    ordered = sort_records(records, sort or [("name", 1)], MODEL)
    return [found[r["id"]] for r in page(ordered, limit, offset)]


def set_model_tags(store: MlflowStore, project: str, name: str, tags: Mapping[str, Any]) -> None:
    raw = c.pairs(_model_raw(store, project, name).get("tags"))
    texts, kinds = c.encode_values(tags, "tag", c.MAX_MODEL_TAG_VALUE)
    types = c.types_of(raw, c.TAG_TYPES)
    merged = c.merged_types(types, kinds)
    if merged != types:
        texts[c.TAG_TYPES] = c.dumps(merged)
    qualified = c.qualified(project, name)
    for key, value in texts.items():
        store._call(
            "POST",
            "registered-models/set-tag",
            {"name": qualified, "key": key, "value": value},
        )


def rename_model(store: MlflowStore, project: str, name: str, new_name: str) -> RegisteredModel:
    _model_raw(store, project, name)
    _check_model_name(new_name)
    try:
        store._call(
            "POST",
            "registered-models/rename",
            {"name": c.qualified(project, name), "new_name": c.qualified(project, new_name)},
        )
    except Conflict:
        raise Conflict(f"model {new_name!r} already exists in project {project!r}") from None
    return get_model(store, project, new_name)


def delete_model(store: MlflowStore, project: str, name: str) -> None:
    _model_raw(store, project, name)
    store.http.call("DELETE", "registered-models/delete", {"name": c.qualified(project, name)})


def delete_model_version(store: MlflowStore, project: str, model: str, version: int) -> None:
    found = get_model_version(store, project, model, int(version))
    store.http.call(
        "DELETE",
        "model-versions/delete",
        {"name": c.qualified(project, model), "version": str(found.version)},
    )


# --- model versions -----------------------------------------------------------------


def create_model_version(
    store: MlflowStore,
    project: str,
    model: str,
    *,
    run_id: str | None,
    path_in_run: str,
    content_hash: str,
    label: str | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    library_versions: Mapping[str, str] | None = None,
    author: str = "",
    allow_duplication: bool = False,
) -> tuple[ModelVersion, bool]:
    check_name(project, "project")
    _check_model_name(model)
    if label is not None:
        check_label(label)
    texts, kinds = c.encode_values(tags, "tag", c.MAX_MODEL_TAG_VALUE)
    qualified = c.qualified(project, model)
    with contextlib.suppress(Conflict):  # registered before, or by a concurrent writer
        store._call("POST", "registered-models/create", {"name": qualified})
    if not allow_duplication:
        same = _search_versions(
            store,
            f"name = {c.literal(qualified)} "
            f"AND tags.`keel.content_hash` = {c.literal(content_hash)}",
            order_by="version_number ASC",
            want=1,
        )
        if same:
            aliases = c.aliases_of(_model_raw(store, project, model))
            return c.model_version(same[0], aliases), False
    metrics: dict[str, float | None] = {}
    if run_id is not None:
        for key, value in store.get_run(run_id).metrics.items():
            metrics[key] = value if value == value and abs(value) != float("inf") else None
    system = {
        "keel.content_hash": content_hash,
        "keel.path_in_run": path_in_run,
        "keel.metrics": c.dumps(metrics),
        "keel.library_versions": c.dumps(dict(library_versions or {})),
    }
    if label is not None:
        system["keel.label"] = label
    if author:
        system["keel.author"] = author
    types = c.merged_types({}, kinds)
    if types:
        system[c.TAG_TYPES] = c.dumps(types)
    body = {
        "name": qualified,
        "source": f"runs:/{run_id}/{path_in_run}" if run_id else f"keel:/{path_in_run}",
        "description": description,
        "tags": c.as_items({**texts, **system}),
    }
    if run_id is not None:
        body["run_id"] = run_id
    answer = store._call("POST", "model-versions/create", body)
    return c.model_version(answer["model_version"], {}), True


def _search_versions(
    store: MlflowStore, filter_: str, order_by: str | None = None, want: int | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"filter": filter_, "max_results": want or PAGE_SIZE}
    if order_by:
        params["order_by"] = order_by
    found = []
    for item in store._get_pages("model-versions/search", params, "model_versions"):
        found.append(item)
        if want is not None and len(found) >= want:
            break
    return found


def _version_raw(store: MlflowStore, mlflow_name: str, version: int) -> dict[str, Any]:
    answer = store._call("GET", "model-versions/get", name=mlflow_name, version=str(version))
    return dict(answer["model_version"])


def get_model_version(
    store: MlflowStore, project: str, model: str, ref: int | str = "latest"
) -> ModelVersion:
    registered = _model_raw(store, project, model)
    aliases = c.aliases_of(registered)
    qualified = str(registered["name"])
    text = str(ref).lstrip("@")
    number: int | None = None
    if isinstance(ref, int) or text.isdigit():
        number = int(text)
    elif text == "latest":
        number = c.registered_model(registered).latest_version
    elif text in aliases:
        number = aliases[text]
    else:
        literal = c.literal(text)
        labelled = _search_versions(
            store,
            f"name = {c.literal(qualified)} AND tags.`keel.label` = {literal}",
            order_by="version_number DESC",
            want=1,
        )
        if labelled:
            return c.model_version(labelled[0], aliases)
    if number is not None:
        try:
            return c.model_version(_version_raw(store, qualified, number), aliases)
        except NotFound:
            pass
    raise NotFound(f"model {model!r} has no version, alias or label {text!r}")


def find_model_versions(
    store: MlflowStore,
    project: str | None,
    query: Mapping[str, Any] | None = None,
    sort: Sort | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ModelVersion]:
    match = compile_query(query, VERSION)
    check_sort(sort, VERSION)
    page([], limit, offset)
    clauses = _version_clauses(query, project)
    models: dict[str, dict[str, Any] | None] = {}
    runs: dict[str, Run | None] = {}
    found: dict[str, ModelVersion] = {}
    records = []
    for data in _search_versions(store, " AND ".join(clauses)):
        mlflow_name = str(data["name"])
        model_project, _ = c.split_name(mlflow_name)
        if project is not None and model_project != project:
            continue
        if mlflow_name not in models:
            models[mlflow_name] = _model_or_none(store, mlflow_name)
        registered = models[mlflow_name]
        mv = c.model_version(data, c.aliases_of(registered or {}))
        found[mv.id] = mv
        records.append(_version_record(store, mv, registered, runs))
    records = [r for r in records if match(r) is True]
    ordered = sort_records(records, sort or [("created_at", 1)], VERSION)
    return [found[r["id"]] for r in page(ordered, limit, offset)]


def _model_or_none(store: MlflowStore, mlflow_name: str) -> dict[str, Any] | None:
    try:
        answer = store._call("GET", "registered-models/get", name=mlflow_name)
    except NotFound:
        return None
    return dict(answer["registered_model"])


def _version_record(
    store: MlflowStore,
    mv: ModelVersion,
    registered: Mapping[str, Any] | None,
    runs: dict[str, Run | None],
) -> dict[str, Any]:
    def run() -> Run | None:
        if mv.run_id is None:
            return None
        if mv.run_id not in runs:
            try:
                runs[mv.run_id] = store.get_run(mv.run_id)
            except (NotFound, InvalidInput):
                runs[mv.run_id] = None
        return runs[mv.run_id]

    def run_record() -> dict[str, Any] | None:
        found = run()
        return None if found is None else store._run_record(found, {})

    def run_metrics() -> dict[str, float]:
        found = run()
        return {} if found is None else found.metrics

    model = None if registered is None else c.record(c.registered_model(registered))
    return c.record(mv, metrics=Lazy(run_metrics), model=model, run=Lazy(run_record))


def _version_by_id(store: MlflowStore, version_id: str) -> tuple[str, int, dict[str, Any]]:
    name, number = c.parse_version_id(version_id)
    try:
        return name, number, _version_raw(store, name, number)
    except NotFound:
        raise NotFound(f"model version {version_id} not found") from None


def set_model_version_tags(store: MlflowStore, version_id: str, tags: Mapping[str, Any]) -> None:
    name, number, data = _version_by_id(store, version_id)
    raw = c.pairs(data.get("tags"))
    texts, kinds = c.encode_values(tags, "tag", c.MAX_MODEL_TAG_VALUE)
    types = c.types_of(raw, c.TAG_TYPES)
    merged = c.merged_types(types, kinds)
    if merged != types:
        texts[c.TAG_TYPES] = c.dumps(merged)
    for key, value in texts.items():
        store._call(
            "POST",
            "model-versions/set-tag",
            {"name": name, "version": str(number), "key": key, "value": value},
        )


def update_model_version_metrics(
    store: MlflowStore, version_id: str, metrics: Mapping[str, float]
) -> ModelVersion:
    name, number, data = _version_by_id(store, version_id)
    merged = dict(c.get_json(c.pairs(data.get("tags")), "keel.metrics", {}))
    for key, value in metrics.items():
        value = float(value)
        merged[key] = value if value == value and abs(value) != float("inf") else None
    store._call(
        "POST",
        "model-versions/set-tag",
        {"name": name, "version": str(number), "key": "keel.metrics", "value": c.dumps(merged)},
    )
    registered = _model_or_none(store, name) or {}
    return c.model_version(_version_raw(store, name, number), c.aliases_of(registered))


def set_alias(store: MlflowStore, project: str, model: str, alias: str, version: int) -> None:
    check_alias(alias)
    target = get_model_version(store, project, model, int(version))
    store._call(
        "POST",
        "registered-models/alias",
        {"name": c.qualified(project, model), "alias": alias, "version": str(target.version)},
    )


def delete_alias(store: MlflowStore, project: str, model: str, alias: str) -> None:
    registered = get_model(store, project, model)
    if alias not in registered.aliases:
        raise NotFound(f"model {model!r} has no alias {alias!r}")
    store.http.call("DELETE", "registered-models/alias", {"name": registered.id, "alias": alias})


def _version_clauses(query: Mapping[str, Any] | None, project: str | None) -> list[str]:
    """Filter clauses narrowing a version search: exact name, hash, run or label when the
    query pins them (the whole query is still checked client-side)."""
    from keel.store.matching import conjuncts

    clauses = []
    pinned_name = False
    for conjunct in conjuncts(query):
        ((key, spec),) = conjunct.items()
        if isinstance(spec, Mapping) and set(spec) == {"$eq"}:
            spec = spec["$eq"]
        if not isinstance(spec, str) or "'" in spec or "\\" in spec:
            continue
        key = key.removeprefix("version.")
        if key == "model.name" and project is not None and not pinned_name:
            clauses.append(f"name = '{c.qualified(project, spec)}'")
            pinned_name = True
        elif key == "content_hash":
            clauses.append(f"tags.`keel.content_hash` = '{spec}'")
        elif key == "run_id":
            clauses.append(f"run_id = '{spec}'")
        elif key == "label":
            clauses.append(f"tags.`keel.label` = '{spec}'")
    if not pinned_name and project is not None:
        prefix = c.project_prefix(project)
        if prefix is not None:
            clauses.append(f"name LIKE '{prefix}'")
    return clauses
