"""The metadata store on an MLflow tracking server: every :class:`MetadataStore` method as
calls to MLflow's REST API, so ``keel.Client("mlflow+http://host:5000")`` tracks into MLflow.

How keel's records map onto MLflow's is described in :mod:`keel.store.mlflow.codec`; how
queries are split between MLflow and Python in :mod:`keel.store.mlflow.filters`. This module
keeps experiments, runs and artifact records; registered models and versions
(:mod:`~keel.store.mlflow.models`), datasets (:mod:`~keel.store.mlflow.datasets`) and
invocation records (:mod:`~keel.store.mlflow.invocations`) are functions of the store in
modules of their own, which the store delegates to. What MLflow has no place for is kept
where it round-trips:

* **Artifact file lists** (path → sha256, size) of runs, datasets and invocation batches:
  one small JSON file per ``record_artifacts`` call under ``keel/files/<kind>/<id>/`` in the
  server's artifact root, through its artifact proxy (append-only, so concurrent writers
  never overwrite each other; later records of a path win). The bytes themselves are
  content-addressed blobs of :class:`keel.artifacts.mlflow.MlflowArtifactStore`.
* **Datasets**: each version is a run of the project's reserved experiment
  ``[<project>~].keel-datasets`` with its fields in ``keel.*`` tags; lineage is a
  ``keel.used_by.<run id>`` tag on it, and an input of the using run (MLflow's own dataset
  inputs, so the MLflow UI shows it).
* **Invocation records**: an index file per batch under ``keel/invocations/<version id>/``.

Not available: ``keel gc`` (``referenced_blobs``, ``purge_deleted_runs``): MLflow purges its
deleted runs with ``mlflow gc``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keel.entities import (
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationIndex,
    Metric,
    ModelVersion,
    Project,
    RegisteredModel,
    Run,
)
from keel.errors import Conflict, InvalidInput, NotFound, NotSupported
from keel.store.base import MetadataStore, Sort
from keel.store.matching import (
    EXPERIMENT,
    RUN,
    Lazy,
    check_sort,
    compile_query,
    page,
    sort_records,
)
from keel.store.mlflow import codec as c
from keel.store.mlflow import datasets, invocations, models
from keel.store.mlflow.filters import push_run_query
from keel.store.mlflow.http import MlflowHttp, safe_url
from keel.store.validation import (
    check_experiment_name,
    check_id,
    check_key,
    check_name,
    check_run_kind,
    check_run_name,
    check_run_status,
)

#: MLflow's log-batch limits (mlflow/utils/validation.py)
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_BYTES = 900_000  # MLflow refuses requests over 1 MB
PAGE_SIZE = 1000
FILES_ROOT = "keel/files"
_EXPERIMENT_ID = re.compile(r"^(0|[1-9][0-9]{0,18})$")


class MlflowStore(MetadataStore):
    """keel's records on the MLflow tracking server at ``url``.

    Args:
        url: ``mlflow+http(s)://[user:password@]host:port[/prefix]``; the server must run
            with its artifact proxy (``mlflow server --serve-artifacts``, the default).
        token: a bearer token (default: env ``MLFLOW_TRACKING_TOKEN``).
        timeout: seconds to wait for each read or write on the connection.

    Example:
        >>> import keel                                         # doctest: +SKIP
        >>> client = keel.Client("mlflow+http://127.0.0.1:5000", project="vision")
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url
        self.http = MlflowHttp(url, token, timeout)
        self._dataset_experiments: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MlflowStore({safe_url(self.url)!r})"

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        self.http.close()

    def _call(self, method: str, endpoint: str, body: Any = None, **params: Any) -> dict[str, Any]:
        return self.http.call(method, endpoint, body, params or None)

    # --- projects -------------------------------------------------------------------------

    def get_or_create_project(self, name: str) -> Project:
        """A project is a prefix of MLflow names: nothing to create."""
        check_name(name, "project")
        return Project(id=name, name=name, created_at=0)

    # --- experiments ----------------------------------------------------------------------

    def create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        check_name(project, "project")
        check_experiment_name(name)
        texts, kinds = c.encode_values(tags, "tag", c.MAX_EXPERIMENT_TAG_VALUE)
        types = c.merged_types({}, kinds)
        if types:
            texts.update(c.put_long(c.TAG_TYPES, c.dumps(types), c.MAX_EXPERIMENT_TAG_VALUE))
        body = {"name": c.qualified(project, name), "tags": c.as_items(texts)}
        try:
            answer = self._call("POST", "experiments/create", body)
        except Conflict:
            existing = self._experiment_by_name(project, name)
            where = f" (id {existing['experiment_id']})" if existing else ""
            raise Conflict(
                f"experiment {name!r} already exists in project {project!r}{where}: "
                "use get_or_create_exp to reuse it"
            ) from None
        return self.get_experiment(str(answer["experiment_id"]))

    def get_or_create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        check_experiment_name(name)
        found = self._experiment_by_name(project, name)
        if found is not None:
            return c.experiment(found)
        try:
            return self.create_experiment(project, name, tags)
        except Conflict:
            found = self._experiment_by_name(project, name)
            if found is None:
                raise
            return c.experiment(found)

    def _experiment_by_name(self, project: str, name: str) -> dict[str, Any] | None:
        try:
            answer = self._call(
                "GET", "experiments/get-by-name", experiment_name=c.qualified(project, name)
            )
        except NotFound:
            return None
        return dict(answer["experiment"])

    def _experiment_raw(self, experiment_id: str) -> dict[str, Any]:
        if not isinstance(experiment_id, str):
            raise InvalidInput(f"invalid experiment id {experiment_id!r}")
        if not _EXPERIMENT_ID.match(experiment_id):
            raise NotFound(f"no experiment with id {experiment_id!r}")
        try:
            answer = self._call("GET", "experiments/get", experiment_id=experiment_id)
        except NotFound:
            raise NotFound(f"no experiment with id {experiment_id!r}") from None
        return dict(answer["experiment"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return c.experiment(self._experiment_raw(experiment_id))

    def is_experiment_id(self, value: str) -> bool:
        """MLflow's experiment ids are numbers: ``start_run("12")`` means experiment 12 (so
        an experiment named with digits only is reached through its handle, not its name)."""
        return bool(_EXPERIMENT_ID.match(value))

    def _experiments(self, project: str | None, *, datasets: bool = False) -> list[Experiment]:
        """The experiments of a project (all projects: None), deleted ones too; the reserved
        dataset experiments only when ``datasets``."""
        body: dict[str, Any] = {"max_results": PAGE_SIZE, "view_type": "ALL"}
        prefix = c.project_prefix(project) if project is not None else None
        if prefix is not None:
            body["filter"] = f"name LIKE '{prefix}'"
        found = []
        for data in self._pages("experiments/search", body, "experiments"):
            exp = c.experiment(data)
            if project is not None and exp.project != project:
                continue
            if (exp.name == c.DATASETS) != datasets:
                continue
            found.append(exp)
        return found

    def _pages(
        self, endpoint: str, body: dict[str, Any], key: str, want: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged POST search (up to ``want``)."""
        token = None
        seen = 0
        while True:
            request = dict(body)
            if want is not None:
                request["max_results"] = max(1, min(int(request["max_results"]), want - seen))
            if token:
                request["page_token"] = token
            answer = self._call("POST", endpoint, request)
            for item in answer.get(key, ()):
                yield item
                seen += 1
                if want is not None and seen >= want:
                    return
            token = answer.get("next_page_token")
            if not token:
                return

    def _get_pages(self, endpoint: str, params: dict[str, Any], key: str) -> Iterator[Any]:
        """Every item of a paged GET search (the model registry's)."""
        token = None
        while True:
            query = dict(params)
            if token:
                query["page_token"] = token
            answer = self.http.call("GET", endpoint, None, query)
            yield from answer.get(key, ())
            token = answer.get("next_page_token")
            if not token:
                return

    def find_experiments(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Experiment]:
        match = compile_query(query, EXPERIMENT)
        check_sort(sort, EXPERIMENT)
        page([], limit, offset)
        found = {e.id: e for e in self._experiments(project)}
        records = [c.record(e) for e in found.values()]
        records = [r for r in records if match(r) is True]
        ordered = sort_records(records, sort or [("created_at", 1)], EXPERIMENT)
        return [found[r["id"]] for r in page(ordered, limit, offset)]

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        raw = c.pairs(self._experiment_raw(experiment_id).get("tags"))
        texts, kinds = c.encode_values(tags, "tag", c.MAX_EXPERIMENT_TAG_VALUE)
        types = c.types_of(raw, c.TAG_TYPES)
        merged = c.merged_types(types, kinds)
        if merged != types:
            texts.update(c.put_long(c.TAG_TYPES, c.dumps(merged), c.MAX_EXPERIMENT_TAG_VALUE))
        for key, value in texts.items():
            self._call(
                "POST",
                "experiments/set-experiment-tag",
                {"experiment_id": experiment_id, "key": key, "value": value},
            )

    # --- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        kind: str = "tracking",
        status: str = "running",
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        author: str = "",
        environment: Mapping[str, Any] | None = None,
        start_time: int | None = None,
        run_id: str | None = None,
    ) -> Run:
        check_run_kind(kind)
        check_run_status(status)
        if run_id is not None:
            raise NotSupported(
                "an MLflow server chooses run ids itself: create the run without run_id"
            )
        if name is not None:
            check_run_name(name)
        if not isinstance(experiment_id, str) or not _EXPERIMENT_ID.match(experiment_id):
            raise NotFound(f"no experiment with id {experiment_id!r}")
        texts, kinds = c.encode_values(tags, "tag", c.MAX_RUN_TAG_VALUE)
        system: dict[str, str] = {"keel.kind": kind}
        if author:
            system["mlflow.user"] = author
        if parent_id is not None:
            parent = self._run_raw(parent_id, "parent run")
            if str(parent["info"]["experiment_id"]) != experiment_id:
                raise InvalidInput(f"parent run {parent_id} belongs to another experiment")
            system["mlflow.parentRunId"] = parent_id
        if environment:
            system.update(
                c.put_long("keel.environment", c.dumps(dict(environment)), c.MAX_RUN_TAG_VALUE)
            )
        if status == "scheduled":
            system["keel.start_time"] = ""  # not started yet
        elif start_time is not None:
            system["keel.start_time"] = str(int(start_time))
        types = c.merged_types({}, kinds)
        if types:
            system.update(c.put_long(c.TAG_TYPES, c.dumps(types), c.MAX_RUN_TAG_VALUE))
        all_tags = {**texts, **system}
        first = dict(list(all_tags.items())[:MAX_TAGS_PER_BATCH])
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": author,
            "start_time": c.now_ms(),
            "tags": c.as_items(first),
        }
        if name is not None:
            body["run_name"] = name
        try:
            created = self._call("POST", "runs/create", body)["run"]
        except NotFound:
            raise NotFound(f"no experiment with id {experiment_id!r}") from None
        new_id = str(created["info"]["run_id"])
        rest = {k: v for k, v in all_tags.items() if k not in first}
        if rest:
            self._send_batches(new_id, [], rest, [])
        update: dict[str, Any] = {}
        if name is None:
            update["run_name"] = f"{kind}-{new_id[:8]}"
        if status != "running":
            update["status"] = c.STATUS_TO_MLFLOW[status]
        if update:
            info = self._call("POST", "runs/update", {"run_id": new_id, **update})["run_info"]
            created = {**created, "info": info}
        if rest:
            return self.get_run(new_id)
        return c.run(created)  # what MLflow answered: no need to read it again

    def _run_raw(self, run_id: str, what: str = "run") -> dict[str, Any]:
        check_id(run_id, what)
        try:
            answer = self._call("GET", "runs/get", run_id=run_id)
        except NotFound:
            raise NotFound(f"no {what} with id {run_id!r}") from None
        return dict(answer["run"])

    def get_run(self, run_id: str) -> Run:
        return c.run(self._run_raw(run_id))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        failure: str | None = None,
        lifecycle: str | None = None,
    ) -> Run:
        if status is not None:
            check_run_status(status)
        if name is not None:
            check_run_name(name)
        if lifecycle not in (None, "active", "deleted"):
            raise InvalidInput(f"a run's lifecycle is 'active' or 'deleted', not {lifecycle!r}")
        # read the run first only when the change depends on it (ending a run does not)
        current = None
        if lifecycle is not None or status == "running":
            current = c.run(self._run_raw(run_id))
        else:
            check_id(run_id, "run")
        if lifecycle == "active" and current is not None and current.lifecycle != "active":
            self._call("POST", "runs/restore", {"run_id": run_id})
        tags: dict[str, str] = {}
        if failure is not None:
            tags.update(c.put_long("keel.failure", failure, c.MAX_RUN_TAG_VALUE))
        if status == "running" and current is not None and current.start_time is None:
            tags["keel.start_time"] = str(c.now_ms())
        if tags:
            self._send_batches(run_id, [], tags, [])
        update: dict[str, Any] = {}
        if status is not None:
            update["status"] = c.STATUS_TO_MLFLOW[status]
        if end_time is not None:
            update["end_time"] = int(end_time)
        if name is not None:
            update["run_name"] = name
        if update:
            try:
                self._call("POST", "runs/update", {"run_id": run_id, **update})
            except NotFound:
                raise NotFound(f"no run with id {run_id!r}") from None
        if lifecycle == "deleted" and current is not None and current.lifecycle != "deleted":
            self._call("POST", "runs/delete", {"run_id": run_id})
        return self.get_run(run_id)

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        check_id(run_id, "run")
        param_texts, param_kinds = c.encode_values(params, "param", c.MAX_PARAM_VALUE)
        tag_texts, tag_kinds = c.encode_values(tags, "tag", c.MAX_RUN_TAG_VALUE)
        for key in {m.key for m in metrics}:
            check_key(key, "metric")
        new_params: dict[str, str] = {}
        system: dict[str, str] = {}
        if param_texts or tag_texts:
            raw = self._run_raw(run_id)
            if raw["info"].get("lifecycle_stage") == "deleted":
                raise Conflict(f"run {run_id} is deleted: restore it before logging to it")
            raw_tags = c.pairs(raw.get("data", {}).get("tags"))
            logged = c.pairs(raw.get("data", {}).get("params"))
            param_types = c.types_of(raw_tags, c.PARAM_TYPES)
            for key, text in param_texts.items():
                old = logged.get(key)
                if old is None:
                    new_params[key] = text
                elif (old, param_types.get(key, "str")) != (text, param_kinds[key]):
                    raise Conflict(
                        f"param {key!r} of run {run_id} is already {old!r}, cannot change it "
                        f"to {text!r}: params are write-once (use a tag, or a new run)"
                    )
            merged = c.merged_types(param_types, {k: param_kinds[k] for k in new_params})
            if merged != param_types:
                system.update(c.put_long(c.PARAM_TYPES, c.dumps(merged), c.MAX_RUN_TAG_VALUE))
            tag_types = c.types_of(raw_tags, c.TAG_TYPES)
            merged = c.merged_types(tag_types, tag_kinds)
            if merged != tag_types:
                system.update(c.put_long(c.TAG_TYPES, c.dumps(merged), c.MAX_RUN_TAG_VALUE))
        points = [
            {
                "key": m.key,
                "value": c.encode_metric(m.value),
                "timestamp": int(m.timestamp),
                "step": int(m.step),
            }
            for m in metrics
        ]
        self._send_batches(run_id, list(new_params.items()), {**system, **tag_texts}, points)

    def _send_batches(
        self,
        run_id: str,
        params: list[tuple[str, str]],
        tags: Mapping[str, str],
        metrics: list[dict[str, Any]],
    ) -> None:
        """Log-batch requests within MLflow's limits: params first (with the reserved tags
        typing them in the same request), then tags, then metric points."""
        items: list[tuple[str, Any, int]] = [
            ("params", {"key": k, "value": v}, len(k) + len(v) + 32) for k, v in params
        ]
        items += [("tags", {"key": k, "value": v}, len(k) + len(v) + 32) for k, v in tags.items()]
        items += [("metrics", m, 96 + len(m["key"])) for m in metrics]
        limits = {
            "params": MAX_PARAMS_PER_BATCH,
            "tags": MAX_TAGS_PER_BATCH,
            "metrics": MAX_METRICS_PER_BATCH,
        }
        batch: dict[str, list[Any]] = {"params": [], "tags": [], "metrics": []}
        size = count = 0

        def flush() -> None:
            nonlocal batch, size, count
            if count:
                self._call("POST", "runs/log-batch", {"run_id": run_id, **batch})
            batch = {"params": [], "tags": [], "metrics": []}
            size = count = 0

        for kind, item, item_size in items:
            if (
                len(batch[kind]) >= limits[kind]
                or count >= MAX_ENTITIES_PER_BATCH
                or size + item_size > MAX_BATCH_BYTES
            ):
                flush()
            batch[kind].append(item)
            size += item_size
            count += 1
        flush()

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        check_id(run_id, "run")
        check_key(key, "metric")
        points = []
        token = None
        while True:
            answer = self._call(
                "GET",
                "metrics/get-history",
                run_id=run_id,
                metric_key=key,
                max_results=25000,
                page_token=token,
            )
            for m in answer.get("metrics", ()):
                points.append(
                    Metric(
                        key,
                        c.decode_metric(m.get("value", 0)),
                        int(m.get("step") or 0),
                        int(m.get("timestamp") or 0),
                    )
                )
            token = answer.get("next_page_token")
            if not token:
                break
        if not points:
            self._run_raw(run_id)  # NotFound for an unknown run, as the SQL store says
        points.sort(key=lambda m: (m.step, m.timestamp))
        return points

    def find_runs(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Run]:
        compile_query(query, RUN)  # refuse a malformed query with keel's message
        check_sort(sort, RUN)
        page([], limit, offset)
        push = push_run_query(query, sort)
        experiments = {e.id: e for e in self._experiments(project)}
        ids = list(experiments)
        if push.experiment_query is not None:
            picks = compile_query(push.experiment_query, EXPERIMENT)
            ids = [i for i in ids if picks(c.record(experiments[i])) is True]
        if not ids:
            return []
        body: dict[str, Any] = {
            "experiment_ids": ids,
            "filter": push.filter,
            "run_view_type": "ALL" if include_deleted else "ACTIVE_ONLY",
            "max_results": PAGE_SIZE,
        }
        if push.order_by is not None:
            want = None if limit is None else offset + limit
            pushed = [
                c.run(r)
                for r in self._pages(
                    "runs/search", {**body, "order_by": push.order_by}, "runs", want
                )
            ]
            if all(
                key in run.metrics and run.metrics[key] == run.metrics[key]
                for run in pushed
                for key in push.sort_metrics
            ):
                return page(pushed, limit, offset)
            # a run without a number for a sort metric: MLflow and keel order those apart
        runs = {r.id: r for r in (c.run(d) for d in self._pages("runs/search", body, "runs"))}
        records = [self._run_record(run, experiments) for run in runs.values()]
        if push.remainder is not None:
            remainder = compile_query(push.remainder, RUN)
            records = [r for r in records if remainder(r) is True]
        ordered = sort_records(records, sort or [("created_at", -1)], RUN)
        return [runs[r["id"]] for r in page(ordered, limit, offset)]

    def _run_record(self, run: Run, experiments: Mapping[str, Experiment]) -> dict[str, Any]:
        def experiment() -> dict[str, Any] | None:
            exp = experiments.get(run.experiment_id)
            if exp is None:
                try:
                    exp = self.get_experiment(run.experiment_id)
                except NotFound:
                    return None
            return c.record(exp)

        return c.record(run, exp=Lazy(experiment))

    def children(self, run_id: str) -> list[Run]:
        parent = self._run_raw(run_id)
        body = {
            "experiment_ids": [str(parent["info"]["experiment_id"])],
            "filter": f"tags.`mlflow.parentRunId` = '{run_id}'",
            "run_view_type": "ALL",
            "max_results": PAGE_SIZE,
            "order_by": ["attributes.start_time ASC", "attributes.run_id ASC"],
        }
        return [c.run(r) for r in self._pages("runs/search", body, "runs")]

    # --- artifact records -----------------------------------------------------------------

    def record_artifacts(
        self, owner_kind: str, owner_id: str, files: Sequence[ArtifactFile]
    ) -> None:
        if not files:
            return
        folder = f"{FILES_ROOT}/{c.segment(owner_kind)}/{c.segment(owner_id)}"
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        data = {"files": [[f.path, f.sha256, f.size] for f in files]}
        self.http.put_artifact(f"{folder}/{name}", json.dumps(data).encode())

    def replace_artifacts(self, run_id: str, path: str, files: Sequence[ArtifactFile]) -> None:
        """One record naming the replaced path: listing drops what earlier records put at
        or under it (the record is one object, so readers see all of it or none)."""
        path = path.strip("/")
        folder = f"{FILES_ROOT}/run/{c.segment(run_id)}"
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        data = {"files": [[f.path, f.sha256, f.size] for f in files], "replace": path}
        self.http.put_artifact(f"{folder}/{name}", json.dumps(data).encode())

    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactFile]:
        folder = f"{FILES_ROOT}/{c.segment(owner_kind)}/{c.segment(owner_id)}"
        names = sorted(
            str(e["path"]).rsplit("/", 1)[-1]
            for e in self.http.list_artifacts(folder)
            if not e.get("is_dir")
        )
        merged: dict[str, ArtifactFile] = {}
        for name in names:
            data = self.http.get_artifact(f"{folder}/{name}")
            if data is None:
                continue
            record = json.loads(data)
            if record.get("replace"):
                gone = record["replace"]
                merged = {
                    p: f for p, f in merged.items() if not (p == gone or p.startswith(gone + "/"))
                }
            for path, sha, size in record["files"]:
                merged[path] = ArtifactFile(path, sha, int(size))
        prefix = prefix.strip("/")
        return sorted(
            (
                f
                for f in merged.values()
                if not prefix or f.path == prefix or f.path.startswith(prefix + "/")
            ),
            key=lambda f: f.path,
        )

    def referenced_blobs(self) -> set[str]:
        raise NotSupported(
            "keel gc does not run against an MLflow server: it cannot list what every run "
            "refers to; MLflow purges deleted runs with `mlflow gc`"
        )

    # --- registered models and versions (keel.store.mlflow.models) ------------------------

    def create_model(
        self,
        project: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> RegisteredModel:
        return models.create_model(self, project, name, tags, description)

    def get_or_create_model(self, project: str, name: str) -> RegisteredModel:
        return models.get_or_create_model(self, project, name)

    def get_model(self, project: str, name: str) -> RegisteredModel:
        return models.get_model(self, project, name)

    def find_models(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RegisteredModel]:
        return models.find_models(self, project, query, sort, limit, offset)

    def set_model_tags(self, project: str, name: str, tags: Mapping[str, Any]) -> None:
        return models.set_model_tags(self, project, name, tags)

    def create_model_version(
        self,
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
        return models.create_model_version(
            self,
            project,
            model,
            run_id=run_id,
            path_in_run=path_in_run,
            content_hash=content_hash,
            label=label,
            description=description,
            tags=tags,
            library_versions=library_versions,
            author=author,
            allow_duplication=allow_duplication,
        )

    def get_model_version(
        self, project: str, model: str, ref: int | str = "latest"
    ) -> ModelVersion:
        return models.get_model_version(self, project, model, ref)

    def find_model_versions(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]:
        return models.find_model_versions(self, project, query, sort, limit, offset)

    def set_model_version_tags(self, version_id: str, tags: Mapping[str, Any]) -> None:
        return models.set_model_version_tags(self, version_id, tags)

    def update_model_version_metrics(
        self, version_id: str, metrics: Mapping[str, float]
    ) -> ModelVersion:
        return models.update_model_version_metrics(self, version_id, metrics)

    def rename_model(self, project: str, name: str, new_name: str) -> RegisteredModel:
        return models.rename_model(self, project, name, new_name)

    def delete_model(self, project: str, name: str) -> None:
        return models.delete_model(self, project, name)

    def delete_model_version(self, project: str, model: str, version: int) -> None:
        return models.delete_model_version(self, project, model, version)

    def set_alias(self, project: str, model: str, alias: str, version: int) -> None:
        return models.set_alias(self, project, model, alias, version)

    def delete_alias(self, project: str, model: str, alias: str) -> None:
        return models.delete_alias(self, project, model, alias)

    # --- datasets (keel.store.mlflow.datasets) --------------------------------------------

    def create_dataset(
        self,
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
        return datasets.create_dataset(
            self,
            project,
            name,
            content_hash=content_hash,
            files=files,
            run_id=run_id,
            description=description,
            tags=tags,
            author=author,
            allow_duplication=allow_duplication,
        )

    def get_dataset(self, project: str, name: str, version: int | str = "latest") -> Dataset:
        return datasets.get_dataset(self, project, name, version)

    def find_datasets(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Dataset]:
        return datasets.find_datasets(self, project, query, sort, limit, offset)

    def link_dataset(self, dataset_id: str, run_id: str, role: str = "input") -> None:
        return datasets.link_dataset(self, dataset_id, run_id, role)

    def dataset_runs(self, dataset_id: str) -> list[tuple[str, str]]:
        return datasets.dataset_runs(self, dataset_id)

    # --- invocation records (keel.store.mlflow.invocations) -------------------------------

    def record_invocations(
        self, version_id: str, batch: ArtifactFile, rows: Sequence[InvocationIndex]
    ) -> None:
        return invocations.record_invocations(self, version_id, batch, rows)

    def find_invocations(
        self,
        version_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> list[InvocationIndex]:
        return invocations.find_invocations(self, version_id, since, until, limit)

    # --- housekeeping ---------------------------------------------------------------------

    def purge_deleted_runs(self) -> tuple[list[str], list[str]]:
        raise NotSupported(
            "keel gc does not purge runs on an MLflow server: use `mlflow gc` on the server"
        )
