"""The metadata store behind a keel platform server: every :class:`MetadataStore` method
as a call to its REST API (``/api/v1``, served by :mod:`keel.server.api`).

``keel.Client("http://host:8080", token=…)`` uses it, so the tracking client behaves the
same against a server as against SQLite or PostgreSQL. The server's refusals come back as
the keel errors the embedded store raises (404 → NotFound, 409 → Conflict, 400/422 →
InvalidInput), with the server's one-line message; 401/403 become :class:`AccessDenied`
saying how to get a token, and an unreachable server :class:`StoreUnavailable` naming it
(never its token).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

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
from keel.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    KeelError,
    NotFound,
    StoreUnavailable,
)
from keel.store.base import MetadataStore, Sort
from keel.store.codec import (
    decode,
    decode_list,
    dumps,
    encode,
    encode_number,
    encode_query,
    encode_sort,
    loads,
)
from keel.store.validation import check_id

#: the API's path on the server (keel.server.app.API_PREFIX; the store may not import it)
API_PREFIX = "/api/v1"
TOKEN_ENV = "KEEL_TOKEN"
#: a find's query travels in the URL; past this it is refused here with a clear message
#: rather than by the server's request-line limit with a dropped connection
MAX_QUERY_CHARS = 32_000
TOKEN_HINT = "create a token with `keel tokens create` and pass Client(token=…) or set KEEL_TOKEN"

_USERINFO = re.compile(r"(?<=://)[^/@]*@")
_SECRET = re.compile(r"keel_[A-Za-z0-9_\-]+")


def is_http_url(url: str) -> bool:
    """Whether ``url`` names a keel platform server (``http://`` or ``https://``)."""
    return url.lower().startswith(("http://", "https://"))


def mask_secrets(text: str) -> str:
    """``text`` without credentials: no ``user:password@`` in URLs, no ``keel_…`` tokens."""
    return _SECRET.sub("keel_***", _USERINFO.sub("***@", text))


def path_part(value: str) -> str:
    """A name for a ``{name:path}`` URL part: ``/`` kept, everything else escaped.

    Lone ``.`` parts are escaped too: HTTP clients would otherwise fold ``a/./b`` to ``a/b``.
    """
    return "/".join(
        quote(p, safe="") if p not in (".", "..") else p.replace(".", "%2E")
        for p in value.split("/")
    )


def segment(value: str) -> str:
    """One URL path segment (``/`` escaped)."""
    return quote(str(value), safe="")


def error_of(status: int, message: str, where: str) -> KeelError:
    """The keel error for a refusal of the server at ``where``."""
    if status in (401, 403):
        if "KEEL_TOKEN" not in message:
            message = f"{message} ({where}): {TOKEN_HINT}"
        return AccessDenied(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status in (400, 422):
        return InvalidInput(message)
    if status in (502, 503, 504):
        return StoreUnavailable(f"keel server {where} answered {status}: {message}")
    return KeelError(f"keel server {where} answered {status}: {message}")


def message_of(content: bytes, reason: str) -> str:
    """The server's one-line ``message`` from an error body (or the HTTP reason)."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    text = content.decode("utf-8", "replace").strip().splitlines()
    return mask_secrets(text[0][:300]) if text else reason


def new_http_client(url: str, token: str | None, timeout: float) -> Any:
    """An ``httpx.Client`` for the server at ``url``: keep-alive, bearer token, timeouts,
    and retried connection attempts (a restarting server is not an error yet)."""
    import httpx2 as httpx

    headers = {"Accept": "application/json", "User-Agent": _user_agent()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(
        base_url=url.rstrip("/") + API_PREFIX,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=10.0),
        transport=httpx.HTTPTransport(retries=2),
        follow_redirects=False,
    )


def _user_agent() -> str:
    from keel import __version__

    return f"keel/{__version__}"


class HttpStore(MetadataStore):
    """The metadata store of the keel platform server at ``url``.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8080`` (a path prefix is kept).
        token: an API token (``keel_…``); default env ``KEEL_TOKEN``. Without one, only a
            server that allows anonymous reads answers, and only reads.
        timeout: seconds to wait for each read or write on the connection.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        if not is_http_url(url):
            raise InvalidInput(f"not a keel server URL (http:// or https://): {url!r}")
        self.url = url.rstrip("/")
        self._token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self._timeout = timeout
        self._http: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpStore({mask_secrets(self.url)!r})"

    @property
    def http(self) -> Any:
        """The ``httpx.Client`` (made on first use, shared by threads)."""
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = new_http_client(self.url, self._token, self._timeout)
        return self._http

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    # --- the one way requests are made --------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a request; return the decoded JSON answer (None for 204), or raise the keel
        error of a refusal."""
        import httpx2 as httpx

        headers = {"Content-Type": "application/json"} if body is not None else None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self.http.request(
                method,
                path,
                content=None if body is None else dumps(body),
                params=query or None,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"keel server {mask_secrets(self.url)} is unreachable "
                f"({type(exc).__name__}: {mask_secrets(str(exc)) or 'no answer'}): "
                "is it running, and is the URL right?"
            ) from None
        if resp.status_code >= 400:
            message = message_of(resp.content, resp.reason_phrase)
            raise error_of(resp.status_code, message, mask_secrets(self.url))
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return loads(resp.content)
        except ValueError:
            raise StoreUnavailable(
                f"{mask_secrets(self.url)} did not answer JSON on {path}: is it a keel server?"
            ) from None

    def _find(
        self,
        path: str,
        project: str | None,
        query: Mapping[str, Any] | None,
        sort: Sort | None,
        limit: int | None,
        offset: int,
        **extra: Any,
    ) -> Any:
        params: dict[str, Any] = {"project": project, "limit": limit, "offset": offset or None}
        if query is not None:
            text = dumps(encode_query(query)).decode()
            if len(text) > MAX_QUERY_CHARS:
                raise InvalidInput(
                    f"the query is {len(text) // 1000} KB of JSON; a keel server takes up to "
                    f"{MAX_QUERY_CHARS // 1000} KB: narrow it (fewer $in values) or page with "
                    "limit/offset"
                )
            params["query"] = text
        if sort is not None:
            params["sort"] = dumps(encode_sort(sort)).decode()
        params.update(extra)
        return self._call("GET", path, params=params)

    # --- projects and experiments -----------------------------------------------------------

    def get_or_create_project(self, name: str) -> Project:
        return decode(Project, self._call("PUT", f"/projects/{path_part(name)}"))

    def create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {"project": project, "name": name, "tags": _dict(tags)}
        return decode(Experiment, self._call("POST", "/experiments", body))

    def get_or_create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {"project": project, "name": name, "tags": _dict(tags)}
        return decode(Experiment, self._call("POST", "/experiments/get-or-create", body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        check_id(experiment_id, "experiment")
        return decode(Experiment, self._call("GET", f"/experiments/{experiment_id}"))

    def find_experiments(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Experiment]:
        found = self._find("/experiments", project, query, sort, limit, offset)
        return decode_list(Experiment, found)

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        check_id(experiment_id, "experiment")
        self._call("PATCH", f"/experiments/{experiment_id}", {"tags": dict(tags)})

    # --- runs ---------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, **fields: Any) -> Run:
        body = {"experiment_id": experiment_id, **fields}
        for key in ("tags", "environment"):
            if key in body:
                body[key] = _dict(body[key])
        return decode(Run, self._call("POST", "/runs", body))

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run")
        return decode(Run, self._call("GET", f"/runs/{run_id}"))

    def update_run(self, run_id: str, **fields: Any) -> Run:
        check_id(run_id, "run")
        body = {k: v for k, v in fields.items() if v is not None}
        return decode(Run, self._call("PATCH", f"/runs/{run_id}", body))

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        check_id(run_id, "run")
        body = {
            "params": _dict(params),
            "metrics": [
                {
                    "key": m.key,
                    "value": encode_number(m.value),
                    "step": m.step,
                    "timestamp": m.timestamp,
                }
                for m in metrics
            ],
            "tags": _dict(tags),
        }
        self._call("POST", f"/runs/{run_id}/log-batch", body)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        check_id(run_id, "run")
        found = self._call("GET", f"/runs/{run_id}/metrics/{path_part(key)}")
        return decode_list(Metric, found)

    def find_runs(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Run]:
        found = self._find(
            "/runs",
            project,
            query,
            sort,
            limit,
            offset,
            include_deleted="true" if include_deleted else None,
        )
        return decode_list(Run, found)

    def children(self, run_id: str) -> list[Run]:
        check_id(run_id, "run")
        return decode_list(Run, self._call("GET", f"/runs/{run_id}/children"))

    # --- artifacts ----------------------------------------------------------------------------

    def record_artifacts(
        self, owner_kind: str, owner_id: str, files: Sequence[ArtifactFile]
    ) -> None:
        check_id(owner_id, owner_kind.replace("_", " "))
        path = f"/artifacts/{segment(owner_kind)}/{owner_id}"
        self._call("POST", path, {"files": encode(list(files))})

    def replace_artifacts(self, run_id: str, path: str, files: Sequence[ArtifactFile]) -> None:
        check_id(run_id, "run")
        body = {"files": encode(list(files))}
        self._call("POST", f"/artifacts/run/{run_id}", body, params={"replace": path})

    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactFile]:
        check_id(owner_id, owner_kind.replace("_", " "))
        path = f"/artifacts/{segment(owner_kind)}/{owner_id}"
        return decode_list(ArtifactFile, self._call("GET", path, params={"prefix": prefix or None}))

    def referenced_blobs(self) -> set[str]:
        return set(self._call("GET", "/gc/referenced-blobs"))

    # --- models -------------------------------------------------------------------------------

    def create_model(
        self,
        project: str,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> RegisteredModel:
        body = {"project": project, "name": name, "tags": _dict(tags), "description": description}
        return decode(RegisteredModel, self._call("POST", "/models", body))

    def get_or_create_model(self, project: str, name: str) -> RegisteredModel:
        body = {"project": project, "name": name}
        return decode(RegisteredModel, self._call("POST", "/models/get-or-create", body))

    def get_model(self, project: str, name: str) -> RegisteredModel:
        found = self._call("GET", f"/models/{path_part(name)}", params={"project": project})
        return decode(RegisteredModel, found)

    def find_models(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RegisteredModel]:
        found = self._find("/models", project, query, sort, limit, offset)
        return decode_list(RegisteredModel, found)

    def set_model_tags(self, project: str, name: str, tags: Mapping[str, Any]) -> None:
        path = f"/models/{path_part(name)}"
        self._call("PATCH", path, {"tags": dict(tags)}, params={"project": project})

    def rename_model(self, project: str, name: str, new_name: str) -> RegisteredModel:
        path = f"/models/{path_part(name)}/rename"
        found = self._call("POST", path, {"new_name": new_name}, params={"project": project})
        return decode(RegisteredModel, found)

    def delete_model(self, project: str, name: str) -> None:
        self._call("DELETE", f"/models/{path_part(name)}", params={"project": project})

    def delete_model_version(self, project: str, model: str, version: int) -> None:
        path = f"/model-versions/{path_part(model)}/{int(version)}"
        self._call("DELETE", path, params={"project": project})

    def create_model_version(
        self, project: str, model: str, **fields: Any
    ) -> tuple[ModelVersion, bool]:
        body = {"project": project, "model": model, **fields}
        for key in ("tags", "library_versions"):
            if key in body:
                body[key] = _dict(body[key])
        answer = self._call("POST", "/model-versions", body)
        return decode(ModelVersion, answer["version"]), bool(answer["created"])

    def register_model_version(
        self, project: str, model: str, *, files: Sequence[ArtifactFile], **fields: Any
    ) -> tuple[ModelVersion, bool]:
        # one request: the server records the files and the version in one transaction
        return self.create_model_version(project, model, files=encode(list(files)), **fields)

    def get_model_version(
        self, project: str, model: str, ref: int | str = "latest"
    ) -> ModelVersion:
        text = str(ref).lstrip("@")
        if not text or "/" in text:
            raise NotFound(f"model {model!r} has no version, alias or label {text!r}")
        path = f"/model-versions/{path_part(model)}/{segment(text)}"
        return decode(ModelVersion, self._call("GET", path, params={"project": project}))

    def find_model_versions(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]:
        found = self._find("/model-versions", project, query, sort, limit, offset)
        return decode_list(ModelVersion, found)

    def set_model_version_tags(self, version_id: str, tags: Mapping[str, Any]) -> None:
        check_id(version_id, "model version")
        self._call("PATCH", f"/model-versions/{version_id}", {"tags": dict(tags)})

    def update_model_version_metrics(
        self, version_id: str, metrics: Mapping[str, float]
    ) -> ModelVersion:
        check_id(version_id, "model version")
        body = {"metrics": {k: encode_number(float(v)) for k, v in metrics.items()}}
        return decode(ModelVersion, self._call("PATCH", f"/model-versions/{version_id}", body))

    def set_alias(self, project: str, model: str, alias: str, version: int) -> None:
        path = f"/models/{path_part(model)}/aliases/{segment(alias)}"
        self._call("PUT", path, {"version": int(version)}, params={"project": project})

    def delete_alias(self, project: str, model: str, alias: str) -> None:
        path = f"/models/{path_part(model)}/aliases/{segment(alias)}"
        self._call("DELETE", path, params={"project": project})

    # --- datasets -----------------------------------------------------------------------------

    def create_dataset(self, project: str, name: str, **fields: Any) -> tuple[Dataset, bool]:
        body = {"project": project, "name": name, **fields}
        if "files" in body:
            body["files"] = encode(list(body["files"]))
        if "tags" in body:
            body["tags"] = _dict(body["tags"])
        answer = self._call("POST", "/datasets", body)
        return decode(Dataset, answer["dataset"]), bool(answer["created"])

    def get_dataset(self, project: str, name: str, version: int | str = "latest") -> Dataset:
        text = str(version)
        if not text or "/" in text:
            raise InvalidInput(f"dataset version must be a number or 'latest', got {text!r}")
        path = f"/dataset-versions/{path_part(name)}/{segment(text)}"
        return decode(Dataset, self._call("GET", path, params={"project": project}))

    def find_datasets(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Dataset]:
        found = self._find("/datasets", project, query, sort, limit, offset)
        return decode_list(Dataset, found)

    def link_dataset(self, dataset_id: str, run_id: str, role: str = "input") -> None:
        check_id(dataset_id, "dataset")
        check_id(run_id, "run")
        self._call("PUT", f"/datasets/{dataset_id}/runs/{run_id}", {"role": role})

    def dataset_runs(self, dataset_id: str) -> list[tuple[str, str]]:
        """The runs that made (``output``) or used (``input``) a dataset."""
        check_id(dataset_id, "dataset")
        found = self._call("GET", f"/datasets/{dataset_id}/runs")
        return [(row["run_id"], row["role"]) for row in found]

    # --- invocation records -------------------------------------------------------------------

    def record_invocations(
        self, version_id: str, batch: ArtifactFile, rows: Sequence[InvocationIndex]
    ) -> None:
        body = {"version_id": version_id, "batch": encode(batch), "rows": encode(list(rows))}
        self._call("POST", "/invocations", body)

    def find_invocations(
        self,
        version_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> list[InvocationIndex]:
        params = {"version_id": version_id, "since": since, "until": until, "limit": limit}
        return decode_list(InvocationIndex, self._call("GET", "/invocations", params=params))

    # --- housekeeping -------------------------------------------------------------------------

    def purge_deleted_runs(self) -> tuple[list[str], list[str]]:
        answer = self._call("POST", "/gc/purge-deleted-runs")
        return list(answer["purged"]), list(answer["kept"])


def _dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


__all__ = ["API_PREFIX", "HttpStore", "is_http_url", "mask_secrets"]
