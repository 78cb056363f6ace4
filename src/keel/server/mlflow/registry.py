"""MLflow's model registry routes over keel's registry: registered models, versions, tags,
descriptions, aliases and download URIs.

A version registered through MLflow is a real keel version: its source (``runs:/<run>/<path>``,
``mlflow-artifacts:/…`` or a logged model's ``models:/m-<id>``) must name files keel stores,
and its content hash is computed from them, so ``keel.Client().get_model_artifact("name@3")``
verifies and loads the same files MLflow's client downloads. As in MLflow, every registration
makes a new version (keel's return-the-identical-version rule is not applied). Not
implemented, because keel keeps every model and version: deleting or renaming registered
models and deleting versions; stages (deprecated in MLflow) are always ``None``.
"""

from __future__ import annotations

from typing import Any

from keel.entities import ModelVersion
from keel.errors import Conflict, NotFound
from keel.hashing import hash_tree
from keel.server.mlflow.protocol import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    Call,
    MlflowError,
    new_router,
    operation,
    text_value,
)
from keel.server.mlflow.records import (
    LOGGED_MODEL_TAG,
    MODEL_FOLDER,
    SOURCE_RUN_TAG,
    ExperimentIds,
    get_run,
    logged_model_run,
    parse_source,
    registered_model_json,
    source_runs,
    version_json,
    version_location,
)
from keel.server.mlflow.search import (
    Attribute,
    Target,
    offset_of,
    page_size,
    paged,
    parse_filter,
    sort_of,
    translate,
)

router = new_router()  # under /api/2.0
MODELS = "/mlflow/registered-models"
VERSIONS = "/mlflow/model-versions"

REGISTERED_MODELS = Target(
    "registered models",
    attributes={"name": Attribute("name")},
    order_attributes={
        "name": "name",
        "timestamp": "created_at",
        "creation_timestamp": "created_at",
        "last_updated_timestamp": "updated_at",
    },
    missing_is_not_equal=True,
)
MODEL_VERSIONS = Target(
    "model versions",
    attributes={
        "name": Attribute("model.name"),
        "version_number": Attribute("version", numeric=True),
        "run_id": Attribute("run_id"),
        "user_id": Attribute("author"),
    },
    order_attributes={
        "name": "model.name",
        "version_number": "version",
        "creation_timestamp": "created_at",
        "timestamp": "created_at",
        "last_updated_timestamp": "created_at",
    },
    missing_is_not_equal=True,
)


def _model_missing(name: str) -> MlflowError:
    return MlflowError(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)


def _get_model(call: Call, name: str) -> Any:
    try:
        return call.store.get_model(call.project, name)
    except NotFound:
        raise _model_missing(name) from None


def _version(call: Call, name: str, version: Any) -> ModelVersion:
    text = str(version)
    if not text.isdigit():
        raise MlflowError(f"Invalid model version {text!r}: a version is a number")
    try:
        return call.store.get_model_version(call.project, name, int(text))
    except NotFound:
        _get_model(call, name)  # says which is missing, the model or the version
        raise MlflowError(
            f"Model Version (name={name}, version={text}) not found", RESOURCE_DOES_NOT_EXIST
        ) from None


def _model_reply(call: Call, name: str) -> dict[str, Any]:
    model = _get_model(call, name)
    latest = None
    if model.latest_version is not None:
        latest = call.store.get_model_version(call.project, name, model.latest_version)
    runs = source_runs(call, [latest] if latest else [])
    return registered_model_json(model, latest, runs, ExperimentIds(call))


def _version_reply(call: Call, mv: ModelVersion) -> dict[str, Any]:
    return version_json(mv, source_runs(call, [mv]), ExperimentIds(call))


# --- registered models -----------------------------------------------------------------------


@operation(router, "POST", f"{MODELS}/create", "editor")
def create_registered_model(call: Call) -> dict[str, Any]:
    args = call.args
    name = args.text("name", required=True)
    try:
        call.store.create_model(
            call.project, name, args.key_values("tags"), args.text("description") or ""
        )
    except Conflict:
        raise MlflowError(
            f"Registered Model (name={name}) already exists.", RESOURCE_ALREADY_EXISTS
        ) from None
    return {"registered_model": _model_reply(call, name)}


@operation(router, "GET", f"{MODELS}/get", "viewer")
def get_registered_model(call: Call) -> dict[str, Any]:
    return {"registered_model": _model_reply(call, call.args.text("name", required=True))}


@operation(router, "GET", f"{MODELS}/search", "viewer")
def search_registered_models(call: Call) -> dict[str, Any]:
    args = call.args
    size = page_size(args.integer("max_results"), 100, 1000)
    offset = offset_of(args.text("page_token"))
    query = translate(parse_filter(args.text("filter")), REGISTERED_MODELS)
    sort = sort_of(args.strings("order_by"), REGISTERED_MODELS) or [("name", 1)]
    found = call.store.find_models(call.project, query, sort, size + 1, offset)
    page, token = paged(found, offset, size)
    latest: dict[str, ModelVersion] = {}
    names = [m.name for m in page if m.latest_version is not None]
    if names:
        for mv in call.store.find_model_versions(
            call.project, {"model.name": {"$in": names}}, [("version", 1)]
        ):
            latest[mv.model] = mv
    runs = source_runs(call, latest.values())
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {
        "registered_models": [registered_model_json(m, latest.get(m.name), runs, ids) for m in page]
    }
    if token:
        reply["next_page_token"] = token
    return reply


@operation(router, "PATCH", f"{MODELS}/update", "editor")
def update_registered_model(call: Call) -> dict[str, Any]:
    """Set a registered model's description."""
    name = call.args.text("name", required=True)
    _get_model(call, name)
    description = text_value(call.args.data.get("description"), "description")
    call.store.set_model_description(call.project, name, description)
    return {"registered_model": _model_reply(call, name)}


@operation(router, "POST", f"{MODELS}/set-tag", "editor")
def set_registered_model_tag(call: Call) -> None:
    args = call.args
    name = args.text("name", required=True)
    _get_model(call, name)
    key = args.text("key", required=True)
    call.store.set_model_tags(
        call.project, name, {key: text_value(args.data.get("value"), "value")}
    )


@operation(router, "DELETE", f"{MODELS}/delete-tag", "editor")
def delete_registered_model_tag(call: Call) -> None:
    name = call.args.text("name", required=True)
    _get_model(call, name)
    call.store.delete_model_tag(call.project, name, call.args.text("key", required=True))


def _latest_versions(call: Call) -> dict[str, Any]:
    """The newest version (stages are always ``None`` in keel, so there is one)."""
    name = call.args.text("name", required=True)
    model = _get_model(call, name)
    if model.latest_version is None:
        return {"model_versions": []}
    return {"model_versions": [_version_reply(call, _version(call, name, model.latest_version))]}


operation(router, "POST", f"{MODELS}/get-latest-versions", "viewer")(_latest_versions)
operation(router, "GET", f"{MODELS}/get-latest-versions", "viewer")(_latest_versions)


# --- aliases ---------------------------------------------------------------------------------


@operation(router, "POST", f"{MODELS}/alias", "editor")
def set_alias(call: Call) -> None:
    """Point an alias at a version (moving it from another one)."""
    args = call.args
    name = args.text("name", required=True)
    alias = args.text("alias", required=True)
    mv = _version(call, name, args.text("version", required=True))
    if alias.lower() == "latest":
        raise MlflowError("'latest' alias name (case insensitive) is reserved.")
    call.store.set_alias(call.project, name, alias, mv.version)


@operation(router, "DELETE", f"{MODELS}/alias", "editor")
def delete_alias(call: Call) -> None:
    args = call.args
    name = args.text("name", required=True)
    _get_model(call, name)
    call.store.delete_alias(call.project, name, args.text("alias", required=True))


@operation(router, "GET", f"{MODELS}/alias", "viewer")
def get_version_by_alias(call: Call) -> dict[str, Any]:
    """The version an alias points at (an alias only: keel's labels are not looked at)."""
    args = call.args
    name = args.text("name", required=True)
    alias = args.text("alias", required=True)
    version = _get_model(call, name).aliases.get(alias)
    if version is None:
        raise MlflowError(f"Registered model alias {alias} not found.", RESOURCE_DOES_NOT_EXIST)
    return {"model_version": _version_reply(call, _version(call, name, version))}


# --- versions --------------------------------------------------------------------------------


def _content_hash(files: list[Any], prefix: str) -> str:
    """keel's content hash of stored files, as ``hash_path`` of the original would be."""
    if len(files) == 1 and files[0].path == prefix:
        return str(files[0].sha256)
    return hash_tree({f.path[len(prefix) + 1 :] if prefix else f.path: f.sha256 for f in files})


@operation(router, "POST", f"{VERSIONS}/create", "editor")
def create_model_version(call: Call) -> dict[str, Any]:
    """A new version of a registered model, made of files of a keel run."""
    args = call.args
    name = args.text("name", required=True)
    source = args.text("source", required=True)
    _get_model(call, name)
    model_id = args.text("model_id")
    if model_id:
        where = (logged_model_run(call, model_id).id, MODEL_FOLDER)
    else:
        found = parse_source(source)
        if found is None:
            raise MlflowError(
                f"Invalid model version source {source!r}: keel registers files it stores, "
                "named by runs:/<run id>/<path>, models:/<logged model id> or "
                "mlflow-artifacts:/<experiment>/<run id>/artifacts/<path>"
            )
        where = found
    run_id, path = where
    if not path:
        raise MlflowError(f"Invalid model version source {source!r}: name a path in the run")
    run = get_run(call, run_id)
    files = call.store.list_artifacts("run", run.id, path)
    if not files and source.startswith("runs:/"):
        # MLflow 3: runs:/<run>/<name> also means the model named <name> that run logged
        logged = call.store.find_runs(
            None,
            {f"tags.{LOGGED_MODEL_TAG}": "true", f"tags.{SOURCE_RUN_TAG}": run.id, "name": path},
            [("created_at", -1)],
            limit=1,
        )
        if logged:
            run, path = logged[0], MODEL_FOLDER
            files = call.store.list_artifacts("run", run.id, path)
    if not files:
        raise MlflowError(
            f"Invalid model version source {source!r}: run {run.id} has no files at {path!r}"
        )
    mv, _created = call.store.create_model_version(
        call.project,
        name,
        run_id=run.id,
        path_in_run=path,
        content_hash=_content_hash(files, path),
        description=args.text("description") or "",
        tags=args.key_values("tags"),
        author=call.principal.name,
        allow_duplication=True,
    )
    return {"model_version": _version_reply(call, mv)}


@operation(router, "GET", f"{VERSIONS}/get", "viewer")
def get_model_version(call: Call) -> dict[str, Any]:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    return {"model_version": _version_reply(call, mv)}


@operation(router, "GET", f"{VERSIONS}/search", "viewer")
def search_model_versions(call: Call) -> dict[str, Any]:
    args = call.args
    size = page_size(args.integer("max_results"), 10_000, 200_000)
    offset = offset_of(args.text("page_token"))
    query = translate(parse_filter(args.text("filter")), MODEL_VERSIONS)
    sort = sort_of(args.strings("order_by"), MODEL_VERSIONS) or [("model.name", 1), ("version", -1)]
    found = call.store.find_model_versions(call.project, query, sort, size + 1, offset)
    page, token = paged(found, offset, size)
    runs = source_runs(call, page)
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {"model_versions": [version_json(mv, runs, ids) for mv in page]}
    if token:
        reply["next_page_token"] = token
    return reply


@operation(router, "PATCH", f"{VERSIONS}/update", "editor")
def update_model_version(call: Call) -> dict[str, Any]:
    """Set a version's description."""
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    description = text_value(args.data.get("description"), "description")
    return {
        "model_version": _version_reply(
            call, call.store.set_model_version_description(mv.id, description)
        )
    }


@operation(router, "POST", f"{VERSIONS}/set-tag", "editor")
def set_model_version_tag(call: Call) -> None:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    key = args.text("key", required=True)
    call.store.set_model_version_tags(mv.id, {key: text_value(args.data.get("value"), "value")})


@operation(router, "DELETE", f"{VERSIONS}/delete-tag", "editor")
def delete_model_version_tag(call: Call) -> None:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    call.store.delete_model_version_tag(mv.id, args.text("key", required=True))


@operation(router, "GET", f"{VERSIONS}/get-download-uri", "viewer")
def get_download_uri(call: Call) -> dict[str, Any]:
    """Where the client downloads a version's files from (through the artifacts proxy)."""
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    _source, uri, _model_id = version_location(mv, source_runs(call, [mv]), ExperimentIds(call))
    return {"artifact_uri": uri}
