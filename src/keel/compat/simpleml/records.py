"""Where SimpleML's persistables live in keel, and how they are found again.

SimpleML kept one database row per persistable; keel keeps one tracked run per ``save()``.
The run's tags (``simpleml.kind``, ``simpleml.id``, ``simpleml.name``,
``simpleml.version``, ``simpleml.hash``, ``simpleml.registered_name``, and the ids of the
dataset, pipeline and model it was made from) are the row, queried with keel's
``find_runs``; its artifacts hold the external files (``simpleml/``) and the full record
(``simpleml-record.json``). Besides the run, a dataset is a keel dataset version and a
model a keel model version (numbered by keel: SimpleML's version is keel's), and a metric
is a metric on its model's version.

Saving content identical to a saved version (the same name and ``hash_``) returns that
version, keel's rule for datasets and models; ``save(allow_duplication=True)`` or
``Database(allow_duplication=True)`` makes a new version each time, as SimpleML did.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.compat.simpleml.utils.errors import SimpleMLError

if TYPE_CHECKING:
    from keel.compat.simpleml.persistables.base_persistable import Persistable
    from keel.tracking.client import Client
    from keel.tracking.handles import RunApi

log = logging.getLogger("keel.compat.simpleml")

RECORD = "simpleml-record.json"
FILES = "simpleml"
RUN_KINDS = {"DATASET": "dataset", "PIPELINE": "train", "MODEL": "train", "METRIC": "retest"}
#: record fields that are tags (queryable); ``hash_`` is the tag ``simpleml.hash``
TAG_FIELDS = (
    "id", "name", "version", "registered_name", "hash_", "author", "project",
    "dataset_id", "pipeline_id", "model_id",
)  # fmt: skip


@dataclass
class Session:
    """The keel client persistables are saved with, and the duplication default."""

    client: Client
    allow_duplication: bool = False


_session: Session | None = None


def connect(client: Client, allow_duplication: bool = False) -> Session:
    global _session
    _session = Session(client, allow_duplication)
    return _session


def session() -> Session:
    """The session ``Database(...).initialize()`` opened, else keel's default store."""
    global _session
    if _session is None:
        from keel.tracking.client import Client

        _session = Session(Client())
    return _session


def _tag(field: str) -> str:
    return "simpleml." + ("hash" if field == "hash_" else field)


def _tag_value(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def query(kind: str, filters: dict[str, Any]) -> dict[str, Any]:
    """keel's ``find_runs`` query for persistables of ``kind`` matching SimpleML filters."""
    unknown = sorted(set(filters) - set(TAG_FIELDS))
    if unknown:
        raise SimpleMLError(
            f"cannot look {kind.lower()}s up by {', '.join(unknown)}: use {', '.join(TAG_FIELDS)}"
        )
    found: dict[str, Any] = {"tags.simpleml.kind": kind, "status": "finished"}
    for key, value in filters.items():
        found["tags." + _tag(key)] = _tag_value(value)
    return found


def find_runs(kind: str, filters: dict[str, Any], limit: int | None = 1) -> list[RunApi]:
    client = session().client
    return client.find_runs(query(kind, filters), sort=[("tags.simpleml.version", -1)], limit=limit)


def read_record(run: RunApi) -> dict[str, Any]:
    path = session().client.get_run_artifact(run, RECORD)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load(kind: str, filters: dict[str, Any], load_externals: bool = False) -> Persistable:
    """The newest persistable of ``kind`` matching ``filters`` (SimpleML's ``where(...)
    .order_by(version.desc()).first()``)."""
    from keel.compat.simpleml.registries import SIMPLEML_REGISTRY

    runs = find_runs(kind, filters)
    if not runs:
        described = ", ".join(f"{k}={v}" for k, v in filters.items()) or "no filters"
        raise SimpleMLError(
            f"no saved {kind.lower()} matches {described} in keel project "
            f"{session().client.project!r}: check the name and version (`keel runs list`)"
        )
    run = runs[0]
    record = read_record(run)
    cls = SIMPLEML_REGISTRY.get(record["registered_name"])
    if cls is None:
        import_builtins()
        cls = SIMPLEML_REGISTRY.get(record["registered_name"])
    if cls is None:
        raise SimpleMLError(
            f"{kind.lower()} {record['name']!r} version {record['version']} was saved as "
            f"{record['registered_name']}, which is not defined here: import the module "
            "that defines it before loading"
        )
    for field in ("id", "dataset_id", "pipeline_id", "model_id"):
        if record.get(field) is not None:
            record[field] = uuid.UUID(str(record[field]))
    persistable = cls.from_dict(**record)
    persistable._keel_run_id = run.id
    if load_externals:
        persistable.load_external_files()
    return persistable


def import_builtins() -> None:
    """Register SimpleML's own classes (``import simpleml`` did, upstream)."""
    import importlib

    for module in ("datasets.pandas", "pipelines.sklearn", "models", "metrics", "transformers"):
        importlib.import_module(f"keel.compat.simpleml.{module}")


def load_by_id(kind: str, persistable_id: Any) -> Persistable:
    return load(kind, {"id": persistable_id})


def next_version(persistable: Persistable) -> int:
    """The next version of this name (for metrics: of this name on this model)."""
    filters: dict[str, Any] = {"name": persistable.name}
    if persistable.object_type == "METRIC":
        filters["model_id"] = persistable.model_id  # type: ignore[attr-defined]
    runs = find_runs(persistable.object_type, filters)
    return 1 if not runs else int(runs[0].tags["simpleml.version"]) + 1


def artifact_folder(persistable: Persistable, required: bool = True) -> Path | None:
    """The local copy of the persistable's saved files (None when it saved none and
    ``required`` is False: a pattern such as database_table keeps nothing there)."""
    from keel.errors import NotFound

    run_id = getattr(persistable, "_keel_run_id", None)
    if run_id is None:
        raise SimpleMLError(
            f"{persistable.registered_name} {persistable.name!r} has no saved files: save() "
            "it or load it with PersistableLoader first"
        )
    try:
        return Path(session().client.get_run_artifact(run_id, FILES))
    except NotFound:
        if required:
            raise
        return None


def sql_engine(what: str) -> Any:
    store = session().client.store
    engine = getattr(store, "engine", None)
    if engine is None:
        raise SimpleMLError(
            f"{what}: keel's metadata store here is not a SQL database "
            f"({session().client.store_url}): use the disk_pickled save pattern"
        )
    return engine


def jsonable(value: Any) -> Any:
    """``value`` as JSON: numpy numbers as numbers, other objects as their ``repr``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist())
    return repr(value)


def _tags(persistable: Persistable) -> dict[str, Any]:
    tags: dict[str, Any] = {"simpleml.kind": persistable.object_type}
    for field in TAG_FIELDS:
        value = getattr(persistable, field, None)
        if value is not None:
            tags[_tag(field)] = _tag_value(value)
    return tags


def _adopt(persistable: Persistable, run: RunApi) -> None:
    record = read_record(run)
    persistable.id = uuid.UUID(record["id"])
    persistable.version = record["version"]
    persistable.filepaths = record.get("filepaths") or {}
    persistable._keel_run_id = run.id
    log.info(
        "%s %r is identical to version %s (same hash): using it; save(allow_duplication=True) "
        "makes a new version",
        persistable.object_type.lower(),
        persistable.name,
        persistable.version,
    )


def save(persistable: Persistable, allow_duplication: bool | None = None) -> None:
    """Record ``persistable`` as a tracked run (and a keel dataset or model version)."""
    from keel.compat.simpleml.utils.library_versions import INSTALLED_LIBRARIES

    current = session()
    client = current.client
    duplicate = current.allow_duplication if allow_duplication is None else allow_duplication
    kind = persistable.object_type
    if persistable.hash_ is None:
        persistable.hash_ = persistable._hash()
    if not duplicate:
        same = find_runs(kind, {"name": persistable.name, "hash_": persistable.hash_})
        if same:
            _adopt(persistable, same[0])
            return
    persistable.metadata_.setdefault("library_versions", dict(INSTALLED_LIBRARIES))
    experiment = persistable.name or "default"
    staging = Path(tempfile.mkdtemp(prefix="keel-simpleml-"))
    try:
        with client.start_run(
            experiment,
            name=f"{kind.lower()} {persistable.name}",
            kind=RUN_KINDS.get(kind, "tracking"),
        ) as run:
            persistable._keel_run_id = run.id
            files = staging / FILES
            files.mkdir()
            if persistable.has_external_files:
                persistable.save_external_files(files)
            params = {k: jsonable(v) for k, v in persistable.config.items()}
            params["registered_name"] = persistable.registered_name
            run.log_params(params)
            if any(files.iterdir()):
                run.log_artifact(files, FILES)
            persistable._record_in_keel(run, files, duplicate)  # type: ignore[attr-defined]
            if persistable.version is None:
                persistable.version = next_version(persistable)
            record_file = staging / RECORD
            record = jsonable(persistable.to_dict())
            record_file.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
            run.log_artifact(record_file, RECORD)
            run.set_tags(_tags(persistable))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
