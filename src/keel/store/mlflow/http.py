"""Talking to an MLflow tracking server: its REST API (``/api/2.0/mlflow/…``) and its
artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/…``), with MLflow's refusals turned
into keel's errors.

MLflow answers a refusal with ``{"error_code": …, "message": …}``:

==============================================  ==========================================
MLflow ``error_code``                           keel error
==============================================  ==========================================
``RESOURCE_DOES_NOT_EXIST``, ``NOT_FOUND``      :class:`~keel.errors.NotFound`
``RESOURCE_ALREADY_EXISTS``                     :class:`~keel.errors.Conflict`
``INVALID_PARAMETER_VALUE``, ``BAD_REQUEST``…   :class:`~keel.errors.InvalidInput` (a changed
                                                param or a deleted run: ``Conflict``)
``PERMISSION_DENIED``, ``UNAUTHENTICATED``       :class:`~keel.errors.AccessDenied`
``FEATURE_DISABLED``, ``NOT_IMPLEMENTED``       :class:`~keel.errors.NotSupported`
HTTP 502/503/504, no answer at all              :class:`~keel.errors.StoreUnavailable`
==============================================  ==========================================

Credentials: ``token`` (or env ``MLFLOW_TRACKING_TOKEN``) as a bearer token, or
``user:password@`` in the URL (or env ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``) as HTTP Basic, as MLflow's own client sends them. They never
appear in messages.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from keel.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    KeelError,
    NotFound,
    NotSupported,
    StoreUnavailable,
)

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
SCHEMES = ("mlflow+http://", "mlflow+https://")

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_CONFLICT = {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS", "RESOURCE_CONFLICT", "ABORTED"}
_DENIED = {"PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED"}
_UNSUPPORTED = {"FEATURE_DISABLED", "NOT_IMPLEMENTED"}
_UNAVAILABLE = {"TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE", "DEADLINE_EXCEEDED"}
#: messages of INVALID_PARAMETER_VALUE that mean "contradicts what the store holds"
_CONFLICT_MESSAGES = ("Changing param values is not allowed", "must be in the 'active' state")
_USERINFO = re.compile(r"(?<=://)[^/@]*@")


def is_mlflow_url(url: str) -> bool:
    """Whether ``url`` names an MLflow tracking server (``mlflow+http(s)://…``)."""
    return url.lower().startswith(SCHEMES)


def safe_url(url: str) -> str:
    """The URL without ``user:password@``, for messages."""
    return _USERINFO.sub("", url)


def server_parts(url: str) -> tuple[str, tuple[str, str] | None]:
    """(``http(s)://host:port/prefix`` without credentials, (user, password) if in the URL)."""
    if not is_mlflow_url(url):
        raise InvalidInput(
            f"not an MLflow server URL (mlflow+http:// or mlflow+https://): {safe_url(url)!r}"
        )
    parts = urlsplit(url[len("mlflow+") :])
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    if not host:
        raise InvalidInput(f"the MLflow server URL names no host: {safe_url(url)!r}")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), auth


def error_of(status: int, body: bytes, where: str) -> KeelError:
    """The keel error for an MLflow refusal (its JSON ``error_code`` and ``message``)."""
    code, message = "", ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = str(data.get("error_code") or "")
        message = str(data.get("message") or "")
    if not message:
        lines = body.decode("utf-8", "replace").strip().splitlines()
        message = lines[0][:300] if lines else f"HTTP {status}"
    message = one_line(message)
    if code in _NOT_FOUND or (not code and status == 404):
        if code == "ENDPOINT_NOT_FOUND" or not code:
            return NotSupported(
                f"MLflow server {where} has no such endpoint ({message}): is it an MLflow "
                "tracking server 2.x or newer, started with --serve-artifacts?"
            )
        return NotFound(message)
    if code in _CONFLICT:
        return Conflict(message)
    if code in _DENIED or status in (401, 403):
        return AccessDenied(
            f"MLflow server {where} refused the call ({message}): pass Client(token=…) or set "
            "MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
        )
    if code in _UNSUPPORTED:
        return NotSupported(f"MLflow server {where} does not support this: {message}")
    if code in _UNAVAILABLE or status in (502, 503, 504):
        return StoreUnavailable(f"MLflow server {where} answered {status}: {message}")
    if status == 400 or code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
        if any(m in message for m in _CONFLICT_MESSAGES):
            return Conflict(message)
        return InvalidInput(message)
    return KeelError(f"MLflow server {where} answered {status} {code}: {message}".strip())


def one_line(text: str, limit: int = 500) -> str:
    """The first line of a server message (MLflow appends SQL to some), shortened."""
    first = text.strip().split("\n", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


class MlflowHttp:
    """One MLflow server: its REST API and artifact proxy over a shared ``httpx.Client``.

    Args:
        url: ``mlflow+http(s)://[user:password@]host:port[/prefix]``.
        token: a bearer token (default: env ``MLFLOW_TRACKING_TOKEN``).
        timeout: seconds to wait for each read or write on the connection.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.base, self._auth = server_parts(url)
        self.where = safe_url(self.base)
        if self._auth is None and os.environ.get("MLFLOW_TRACKING_USERNAME"):
            self._auth = (
                os.environ["MLFLOW_TRACKING_USERNAME"],
                os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
            )
        self._token = token or os.environ.get("MLFLOW_TRACKING_TOKEN") or None
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The ``httpx.Client`` (made on first use, shared by threads)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx2 as httpx

                    from keel import __version__

                    headers = {"User-Agent": f"keel/{__version__}"}
                    if self._token:
                        headers["Authorization"] = f"Bearer {self._token}"
                    self._client = httpx.Client(
                        base_url=self.base,
                        headers=headers,
                        auth=self._auth if not self._token else None,
                        timeout=httpx.Timeout(self._timeout, connect=10.0),
                        transport=httpx.HTTPTransport(retries=2),
                        follow_redirects=False,
                    )
        return self._client

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> Any:
        """Send a request; a transport failure becomes StoreUnavailable naming the server."""
        import httpx2 as httpx

        try:
            request = self.client.build_request(method, path, **kwargs)
            return self.client.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"MLflow server {self.where} is unreachable ({type(exc).__name__}: "
                f"{safe_url(str(exc)) or 'no answer'}): is it running, and is the URL right?"
            ) from None

    def call(
        self,
        method: str,
        endpoint: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``/api/2.0/mlflow/<endpoint>``; return the JSON answer or raise its keel error."""
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = json.dumps(body, allow_nan=False).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        resp = self.send(method, API + endpoint, **kwargs)
        if resp.status_code >= 400:
            raise error_of(resp.status_code, resp.content, self.where)
        if not resp.content:
            return {}
        try:
            answer = resp.json()
        except ValueError:
            raise StoreUnavailable(
                f"{self.where} did not answer JSON on {endpoint}: is it an MLflow server?"
            ) from None
        return answer if isinstance(answer, dict) else {}

    # --- the artifact proxy (paths relative to the server's artifact root) --------------

    def artifact_url(self, path: str) -> str:
        return f"{ARTIFACTS}/{quote(path.strip('/'), safe='/')}"

    def put_artifact(self, path: str, data: bytes) -> None:
        resp = self.send(
            "PUT",
            self.artifact_url(path),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if resp.status_code >= 400:
            raise self._artifact_error(resp, f"storing {path}")

    def get_artifact(self, path: str) -> bytes | None:
        """The file's bytes, or None if there is no such file."""
        resp = self.send("GET", self.artifact_url(path))
        if resp.status_code == 404 and isinstance(error_of(404, resp.content, ""), NotFound):
            return None
        if resp.status_code >= 400:
            raise self._artifact_error(resp, f"reading {path}")
        return bytes(resp.content)

    def list_artifacts(self, path: str) -> list[dict[str, Any]]:
        """The entries (``path``, ``is_dir``, ``file_size``) of a folder ([] if missing)."""
        resp = self.send("GET", ARTIFACTS, params={"path": path.strip("/")})
        if resp.status_code >= 400:
            raise self._artifact_error(resp, f"listing {path}")
        files = resp.json().get("files", []) if resp.content else []
        return list(files)

    def _artifact_error(self, resp: Any, action: str) -> KeelError:
        error = error_of(resp.status_code, resp.content, self.where)
        if isinstance(error, NotSupported | AccessDenied | StoreUnavailable):
            return error
        return KeelError(f"{action} through the artifact proxy of {self.where} failed: {error}")
