"""MLflow's model registry routes over keel's registry: registered models (create, get, search,
rename, update, delete, tags, aliases) and versions (create, copy, get, search, update, stage
transitions, delete, tags, download URIs).

A registered model is a keel model and a version a keel version, so keel's side sees what
MLflow's client does: renames, deletions, stages (as the reserved version tag
``keel.mlflow.stage``). A version's source:

* naming files keel stores (``runs:/<run>/<path>``, ``mlflow-artifacts:/…`` of a run or a
  logged model, ``models:/m-<id>``, or ``models:/<name>/<version>`` of such a version: a copy)
  makes a version of those run files, its content hash computed from them, so
  ``keel.Client().get_model_artifact("name@3")`` verifies and loads the files MLflow's client
  downloads;
* naming anything else MLflow accepts (files keel does not hold, a run keel does not know) is
  registered as MLflow does, without files: keel's version has no run and no content hash, and
  loading it through keel says where MLflow was told its files are.

Sources are checked as MLflow's server checks them: a local path or ``file:`` URI must be
under the artifacts of the run given, a remote one must hold no ``..``, a ``runs:/`` source
must name the run given. As in MLflow, every registration makes a new version (keel's
return-the-identical-version rule is not applied) and a deleted version's number is not
given again. Ordering by ``last_updated_timestamp`` orders by creation time.
"""

from __future__ import annotations

import json
import pathlib
import posixpath
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

from keel.entities import ModelVersion, RegisteredModel, Run
from keel.errors import Conflict, NotFound
from keel.hashing import hash_tree
from keel.server.mlflow.protocol import (
    INTERNAL_ERROR,
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
    VERSION_RUN_TAG,
    VERSION_SOURCE_TAG,
    VERSION_STAGE_TAG,
    VERSION_STORAGE_TAG,
    VERSION_UPDATED_TAG,
    ExperimentIds,
    get_run,
    logged_model_json,
    logged_model_run,
    now_ms,
    parse_source,
    registered_model_json,
    run_info_json,
    source_runs,
    user_tag_key,
    user_tags,
    version_json,
    version_location,
    version_stage,
)
from keel.server.mlflow.search import (
    Attribute,
    Clause,
    Target,
    offset_of,
    page_size,
    paged,
    parse_filter,
    parse_order_by,
    sort_of,
    translate,
)

router = new_router()  # under /api/2.0
MODELS = "/mlflow/registered-models"
VERSIONS = "/mlflow/model-versions"

#: MLflow's stages (deprecated in MLflow, still served to its clients)
STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")

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
        "source_path": Attribute(f"tags.{VERSION_SOURCE_TAG}"),
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


def _get_model(call: Call, name: str) -> RegisteredModel:
    try:
        return call.store.get_model(call.project, name)
    except NotFound:
        raise _model_missing(name) from None


def _version(call: Call, name: str, version: Any) -> ModelVersion:
    text = str(version)
    if not text.isdigit():
        raise MlflowError(f"Parameter 'version' must be an integer, got '{text}'.")
    try:
        return call.store.get_model_version(call.project, name, int(text))
    except NotFound:
        _get_model(call, name)  # says which is missing, the model or the version
        raise MlflowError(
            f"Model Version (name={name}, version={text}) not found", RESOURCE_DOES_NOT_EXIST
        ) from None


def _latest_by_stage(versions: Iterable[ModelVersion]) -> dict[str, dict[str, ModelVersion]]:
    """Per model, its newest version in each stage (MLflow's ``latest_versions``)."""
    found: dict[str, dict[str, ModelVersion]] = {}
    for mv in versions:
        by_stage = found.setdefault(mv.model, {})
        stage = version_stage(mv)
        if stage not in by_stage or by_stage[stage].version < mv.version:
            by_stage[stage] = mv
    return found


def _model_versions(call: Call, names: list[str]) -> list[ModelVersion]:
    if not names:
        return []
    return call.store.find_model_versions(
        call.project, {"model.name": {"$in": names}}, [("version", 1)]
    )


def _model_reply(call: Call, name: str) -> dict[str, Any]:
    model = _get_model(call, name)
    names = [name] if model.latest_version is not None else []
    latest = list(_latest_by_stage(_model_versions(call, names)).get(name, {}).values())
    return registered_model_json(model, latest, source_runs(call, latest), ExperimentIds(call))


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
    names = [m.name for m in page if m.latest_version is not None]
    latest = _latest_by_stage(_model_versions(call, names))
    runs = source_runs(call, [mv for by_stage in latest.values() for mv in by_stage.values()])
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {
        "registered_models": [
            registered_model_json(m, list(latest.get(m.name, {}).values()), runs, ids) for m in page
        ]
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


@operation(router, "POST", f"{MODELS}/rename", "editor")
def rename_registered_model(call: Call) -> dict[str, Any]:
    """Rename a registered model (keel's model of that name gets the new one)."""
    name = call.args.text("name", required=True)
    new_name = call.args.text("new_name", required=True)
    _get_model(call, name)
    try:
        call.store.rename_model(call.project, name, new_name)
    except Conflict:
        raise MlflowError(
            f"Registered Model (name={new_name}) already exists.", RESOURCE_ALREADY_EXISTS
        ) from None
    return {"registered_model": _model_reply(call, new_name)}


@operation(router, "DELETE", f"{MODELS}/delete", "editor")
def delete_registered_model(call: Call) -> None:
    """Delete a registered model with its versions (their files stay their runs')."""
    name = call.args.text("name", required=True)
    _get_model(call, name)
    call.store.delete_model(call.project, name)


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


def _canonical_stage(stage: str) -> str:
    for known in STAGES:
        if known.lower() == stage.lower():
            return known
    raise MlflowError(
        f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
    )


def _latest_versions(call: Call) -> dict[str, Any]:
    """The newest version in each of the stages asked for (all stages: none asked for)."""
    name = call.args.text("name", required=True)
    model = _get_model(call, name)
    wanted = {_canonical_stage(s) for s in call.args.strings("stages")} or set(STAGES)
    names = [name] if model.latest_version is not None else []
    by_stage = _latest_by_stage(_model_versions(call, names)).get(name, {})
    found = [mv for stage, mv in by_stage.items() if stage in wanted]
    runs, ids = source_runs(call, found), ExperimentIds(call)
    return {"model_versions": [version_json(mv, runs, ids) for mv in found]}


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


# --- versions: where their sources are -------------------------------------------------------


def _invalid_source(source: str, id_name: str) -> MlflowError:
    return MlflowError(
        f"Invalid model version source: '{source}'. The {id_name} request parameter must "
        "identify the resource that contains the source."
    )


def _is_local(uri: str) -> bool:
    """Whether a source is a local path or ``file:`` URI (MLflow's ``is_local_uri``); a
    ``file:`` URI naming another host is MLflow's internal error."""
    parsed = urllib.parse.urlparse(uri)
    host = parsed.hostname
    remote = bool(host) and not (
        host == "." or host.startswith("localhost") or host.startswith("127.0.0.1")
    )
    if parsed.scheme == "":
        return True
    if parsed.scheme == "file":
        if remote:
            raise MlflowError(
                f"{uri} is not a valid remote uri. For remote access on windows, please "
                "consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).",
                INTERNAL_ERROR,
            )
        return True
    return False


def _local_path(uri: str) -> pathlib.Path:
    parsed = urllib.parse.urlparse(uri)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
    return pathlib.Path(path).resolve()


def _check_relative_paths(source: str) -> None:
    """No ``..``, NUL or path that resolves elsewhere in a remote source (MLflow's check)."""
    message = (
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. Please provide an absolute path."
    )
    while (unquoted := urllib.parse.unquote_plus(source)) != source:
        source = unquoted
    path = re.sub(r"/+", "/", urllib.parse.urlparse(source).path.rstrip("/"))
    if "\x00" in path or any(part == ".." for part in source.split("/")):
        raise MlflowError(message)
    # MLflow compares the path with itself resolved: a relative or empty one does not match
    if not path.startswith("/") or posixpath.normpath(path) != path:
        raise MlflowError(message)


def _uri_parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urllib.parse.urlsplit(uri)
    parts = []
    for part in parsed.path.split("/"):
        while (unquoted := urllib.parse.unquote(part)) != part:
            part = unquoted
        if part:
            parts.append(part)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(parts)


def _within(source: str, root: str) -> bool:
    scheme, host, parts = _uri_parts(source)
    root_scheme, root_host, root_parts = _uri_parts(root)
    return (
        (scheme, host) == (root_scheme, root_host)
        and bool(root_parts)
        and parts[: len(root_parts)] == root_parts
    )


def _is_artifacts_source(source: str) -> bool:
    scheme, _host, parts = _uri_parts(source)
    if scheme == "mlflow-artifacts":
        return True
    route = ("api", "2.0", "mlflow-artifacts", "artifacts")
    return scheme in ("http", "https") and any(
        parts[i : i + len(route)] == route for i in range(len(parts) - len(route) + 1)
    )


def _source_run(call: Call, run_id: str, source: str) -> Run:
    try:
        return get_run(call, run_id)
    except (MlflowError, NotFound):
        raise _invalid_source(source, "run_id") from None


def _artifact_root(call: Call, run: Run) -> str:
    return str(run_info_json(run, ExperimentIds(call))["artifact_uri"])


def _logged_model_id(source: str) -> str | None:
    """The logged model ``models:/m-<id>`` names (None: another models:/ URI)."""
    rest = source[len("models:/") :].strip("/")
    return rest if rest.startswith("m-") and "/" not in rest and "@" not in rest else None


def _check_source_run(call: Call, source: str, run_id: str) -> None:
    """MLflow's checks of a source given with a run id (or with neither id)."""
    if _is_local(source):
        if run_id:
            run = _source_run(call, run_id, source)
            root = _artifact_root(call, run)
            if _is_local(root):
                path, root_path = _local_path(source), _local_path(root)
                if root_path == path or root_path in path.parents:
                    return
        raise MlflowError(
            f"Invalid model version source: '{_local_path(source)}'. To use a local path as a "
            "model version source, the run_id request parameter has to be specified and the "
            "local path has to be contained within the artifact directory of the run specified "
            "by the run_id."
        )
    _check_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "runs":
        source_run_id = source[len("runs:/") :].strip("/").partition("/")[0]
        if parsed.netloc or not (run_id and source_run_id == run_id):
            raise _invalid_source(source, "run_id")
        return
    if parsed.scheme == "models" and (parsed.netloc or _logged_model_id(source)):
        raise _invalid_source(source, "model_id")
    if _is_artifacts_source(source):
        if run_id and _within(source, _artifact_root(call, _source_run(call, run_id, source))):
            return
        raise _invalid_source(source, "run_id")


def _check_source_model(call: Call, source: str, model_id: str) -> None:
    """MLflow's checks of a source given with a logged model id."""
    if _is_local(source):
        raise MlflowError(
            f"Invalid model version source: '{_local_path(source)}'. To use a local path as a "
            "model version source, the model_id request parameter has to be specified and the "
            "local path has to be contained within the artifact directory of the run specified "
            "by the model_id."
        )
    _check_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models":
        if parsed.netloc:
            raise _invalid_source(source, "model_id")
        if (named := _logged_model_id(source)) is not None:
            if named != model_id:
                raise _invalid_source(source, "model_id")
            return
    if parsed.scheme == "runs":
        raise _invalid_source(source, "model_id")
    if _is_artifacts_source(source):
        try:
            run = logged_model_run(call, model_id)
        except MlflowError:
            raise _invalid_source(source, "model_id") from None
        location = logged_model_json(run, ExperimentIds(call))["info"]["artifact_uri"]
        if not _within(source, location):
            raise _invalid_source(source, "model_id")


def _copied_version(call: Call, source: str, args: Any) -> ModelVersion | None:
    """The version a ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` source names
    (a copy), checked against the run and model ids given as MLflow does."""
    if not source.startswith("models:/") or urllib.parse.urlparse(source).netloc:
        if source.startswith("models:"):
            raise MlflowError(
                f"Invalid model version source: '{source}'. Registered model sources must use "
                "the active model registry."
            )
        return None
    if _logged_model_id(source) is not None:
        return None
    rest = source[len("models:/") :].strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        number = _get_model(call, name).aliases.get(alias)
        if number is None:
            raise MlflowError(f"Registered model alias {alias} not found.", RESOURCE_DOES_NOT_EXIST)
    else:
        name, _, ref = rest.rpartition("/")
        if not name:
            raise _invalid_source(source, "model_id")
        number = _get_model(call, name).latest_version if ref.lower() == "latest" else ref
        if number is None:
            raise MlflowError(f"Registered Model {name} has no versions", RESOURCE_DOES_NOT_EXIST)
    found = _version(call, name, number)
    shown = _version_reply(call, found)
    if ("run_id" in args.data and (args.text("run_id") or "") != shown["run_id"]) or (
        "model_id" in args.data and (args.text("model_id") or "") != shown.get("model_id", "")
    ):
        raise MlflowError(
            f"Invalid model version source: '{source}'. The run_id and model_id request "
            "parameters must match the referenced model version."
        )
    return found


def _content_hash(files: list[Any], prefix: str) -> str:
    """keel's content hash of stored files, as ``hash_path`` of the original would be."""
    if len(files) == 1 and files[0].path == prefix:
        return str(files[0].sha256)
    return hash_tree({f.path[len(prefix) + 1 :] if prefix else f.path: f.sha256 for f in files})


def _held_files(call: Call, source: str, model_id: str) -> tuple[Run, str, list[Any]] | None:
    """The keel run, path and files a source names, or None when keel holds none there."""
    where = parse_source(source)
    if model_id:
        model_run = logged_model_run(call, model_id)
        if where is None or where[0] != model_run.id:
            where = (model_run.id, MODEL_FOLDER)
    if where is None:
        return None
    run_id, path = where
    try:
        run = get_run(call, run_id)
    except (MlflowError, NotFound):
        return None
    files = call.store.list_artifacts("run", run.id, path)
    if not files and source.startswith("runs:/") and path:
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
    return (run, path, files) if files else None


# --- versions --------------------------------------------------------------------------------


@operation(router, "POST", f"{VERSIONS}/create", "editor")
def create_model_version(call: Call) -> dict[str, Any]:
    """A new version of a registered model: of the files its source names when keel holds
    them, else (as MLflow allows) of files kept elsewhere."""
    args = call.args
    name = args.text("name", required=True)
    source = args.text("source", required=True)
    run_id = args.text("run_id") or ""
    model_id = args.text("model_id") or ""
    _get_model(call, name)
    copied = _copied_version(call, source, args)
    if copied is not None:
        shown = _version_reply(call, copied)
        source = f"models:/{copied.model}/{copied.version}"
        run_id = run_id if "run_id" in args.data else shown["run_id"]
        model_id = model_id if "model_id" in args.data else shown.get("model_id", "")
    elif model_id:
        _check_source_model(call, source, model_id)
    else:
        _check_source_run(call, source, run_id)
    reserved: dict[str, str] = {VERSION_SOURCE_TAG: source}
    if run_id:
        reserved[VERSION_RUN_TAG] = run_id
    # (keel run, path in it, content hash) of the files keel holds; none: registered as
    # MLflow does, without files
    keel_run: str | None = None
    path_in_run = content_hash = ""
    if copied is not None and copied.run_id is not None:
        keel_run, path_in_run, content_hash = copied.run_id, copied.path_in_run, copied.content_hash
    elif copied is not None:
        download = _download_uri(call, copied)
        if download != source:
            reserved[VERSION_STORAGE_TAG] = download
    elif (held := _held_files(call, source, model_id)) is not None:
        run, path_in_run, files = held
        keel_run, content_hash = run.id, _content_hash(files, path_in_run)
    mv, _created = call.store.create_model_version(
        call.project,
        name,
        run_id=keel_run,
        path_in_run=path_in_run,
        content_hash=content_hash,
        description=args.text("description") or "",
        tags={**user_tags(args.key_values("tags")), **reserved},
        author=call.principal.name,
        allow_duplication=True,
    )
    if model_id:
        _record_on_logged_model(call, model_id, mv)
    return {"model_version": _version_reply(call, mv)}


def _record_on_logged_model(call: Call, model_id: str, mv: ModelVersion) -> None:
    """A logged model lists the versions registered from it (MLflow's
    ``mlflow.modelVersions`` tag)."""
    try:
        run = logged_model_run(call, model_id)
    except MlflowError:
        return
    listed = json.loads(str(run.tags.get("mlflow.modelVersions") or "[]"))
    listed.append({"name": mv.model, "version": mv.version})
    call.store.set_run_tags(run.id, {"mlflow.modelVersions": json.dumps(listed)})


def _download_uri(call: Call, mv: ModelVersion) -> str:
    return version_location(mv, source_runs(call, [mv]), ExperimentIds(call))[1]


@operation(router, "GET", f"{VERSIONS}/get", "viewer")
def get_model_version(call: Call) -> dict[str, Any]:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    return {"model_version": _version_reply(call, mv)}


def _version_query(clauses: list[Clause]) -> dict[str, Any]:
    """keel's query of a version filter; ``run_id`` also matches the run id MLflow was given
    for a version without keel files."""
    parts = []
    for clause in clauses:
        query = translate([clause], MODEL_VERSIONS)
        if clause.kind == "attribute" and clause.key == "run_id":
            tagged = dict(query)
            tagged[f"tags.{VERSION_RUN_TAG}"] = tagged.pop("run_id")
            query = {"$or": [query, tagged]}
        parts.append(query)
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


@operation(router, "GET", f"{VERSIONS}/search", "viewer")
def search_model_versions(call: Call) -> dict[str, Any]:
    args = call.args
    size = page_size(args.integer("max_results"), 10_000, 200_000)
    offset = offset_of(args.text("page_token"))
    query = _version_query(parse_filter(args.text("filter")))
    order_by = args.strings("order_by")
    sort = sort_of(order_by, MODEL_VERSIONS) or [("created_at", -1)]
    named = {key for _kind, key, _asc in parse_order_by(order_by)}
    if "name" not in named:  # MLflow's tie-breakers: name, then the newest version first
        sort.append(("model.name", 1))
    if "version_number" not in named:
        sort.append(("version", -1))
    found = call.store.find_model_versions(call.project, query, sort, size + 1, offset)
    page, token = paged(found, offset, size)
    runs = source_runs(call, page)
    ids = ExperimentIds(call)
    reply: dict[str, Any] = {"model_versions": [version_json(mv, runs, ids) for mv in page]}
    if token:
        reply["next_page_token"] = token
    return reply


def _touched() -> dict[str, str]:
    """The reserved tag saying a version changed now (MLflow's ``last_updated_timestamp``)."""
    return {VERSION_UPDATED_TAG: str(now_ms())}


@operation(router, "PATCH", f"{VERSIONS}/update", "editor")
def update_model_version(call: Call) -> dict[str, Any]:
    """Set a version's description."""
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    if args.data.get("description") is not None:
        description = text_value(args.data.get("description"), "description")
        mv = call.store.set_model_version_description(mv.id, description)
    call.store.set_model_version_tags(mv.id, _touched())
    return {"model_version": _version_reply(call, _version(call, mv.model, mv.version))}


@operation(router, "POST", f"{VERSIONS}/transition-stage", "editor")
def transition_model_version_stage(call: Call) -> dict[str, Any]:
    """Move a version to a stage (optionally archiving the others in that stage)."""
    args = call.args
    name = args.text("name", required=True)
    mv = _version(call, name, args.text("version", required=True))
    stage = _canonical_stage(args.text("stage", required=True))
    archive = args.boolean("archive_existing_versions")
    if archive and stage not in ACTIVE_STAGES:
        raise MlflowError(
            "Model version transition cannot archive existing model versions because "
            f"'{stage}' is not an Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}"
        )
    if archive:
        for other in _model_versions(call, [name]):
            if other.version != mv.version and version_stage(other) == stage:
                call.store.set_model_version_tags(
                    other.id, {VERSION_STAGE_TAG: "Archived", **_touched()}
                )
    call.store.set_model_version_tags(mv.id, {VERSION_STAGE_TAG: stage, **_touched()})
    call.store.touch_model(call.project, name)
    return {"model_version": _version_reply(call, _version(call, name, mv.version))}


@operation(router, "DELETE", f"{VERSIONS}/delete", "editor")
def delete_model_version(call: Call) -> None:
    """Delete a version (its number is not given again; its files stay its run's)."""
    args = call.args
    name = args.text("name", required=True)
    mv = _version(call, name, args.text("version", required=True))
    call.store.delete_model_version(call.project, name, mv.version)


@operation(router, "POST", f"{VERSIONS}/set-tag", "editor")
def set_model_version_tag(call: Call) -> None:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    key = user_tag_key(args.text("key", required=True))
    call.store.set_model_version_tags(mv.id, {key: text_value(args.data.get("value"), "value")})


@operation(router, "DELETE", f"{VERSIONS}/delete-tag", "editor")
def delete_model_version_tag(call: Call) -> None:
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    call.store.delete_model_version_tag(mv.id, user_tag_key(args.text("key", required=True)))


@operation(router, "GET", f"{VERSIONS}/get-download-uri", "viewer")
def get_download_uri(call: Call) -> dict[str, Any]:
    """Where the client downloads a version's files from (through the artifacts proxy when
    keel holds them)."""
    args = call.args
    mv = _version(call, args.text("name", required=True), args.text("version", required=True))
    return {"artifact_uri": _download_uri(call, mv)}
