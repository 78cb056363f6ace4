"""The artifact store behind an MLflow tracking server: keel's blobs through its artifact
proxy (``/api/2.0/mlflow-artifacts/artifacts/…``, served by ``mlflow server
--serve-artifacts``, the default).

This module owns :class:`MlflowArtifactStore`, what ``keel.Client("mlflow+http://host:5000")``
uses when no other artifact store is named. Blobs stay content-addressed, as in every keel
artifact store: the content of a file is stored once, at ``keel/blobs/<sha[:2]>/<sha>`` under
the server's artifact root (``--artifacts-destination``), whichever runs, model versions or
datasets refer to it; which path of which run maps to which blob is recorded by the metadata
store (:class:`keel.store.mlflow.MlflowStore`). So the MLflow UI does not list keel's
artifacts under each run; keel's client reads and verifies them.

It speaks HTTP itself rather than through :mod:`keel.store.mlflow`: artifact stores and
metadata stores sit side by side in keel's layers and do not import each other.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from keel.artifacts.base import BlobInfo, redact_url, sha256_of_file
from keel.artifacts.http import RemoteArtifactStore, _ResponseReader
from keel.errors import InvalidInput

__all__ = ["DEFAULT_ROOT", "MlflowArtifactStore"]

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
DEFAULT_ROOT = "keel/blobs"
_CHUNK = 1 << 20


class MlflowArtifactStore(RemoteArtifactStore):
    """Blobs in the artifact root of the MLflow server at ``url``.

    Args:
        url: ``mlflow+http(s)://[user:password@]host:port[/prefix]``.
        token: a bearer token (default: env ``MLFLOW_TRACKING_TOKEN``); without one,
            ``user:password@`` in the URL or env ``MLFLOW_TRACKING_USERNAME`` /
            ``MLFLOW_TRACKING_PASSWORD`` are sent as HTTP Basic.
        storage_options: ``{"root": "keel/blobs"}``, the folder under the server's artifact
            root that holds the blobs; other options (meant for fsspec stores) are ignored.
        timeout: seconds to wait for each read or write on the connection.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        storage_options: dict[str, Any] | None = None,
        timeout: float = 300.0,
    ) -> None:
        if not url.lower().startswith(("mlflow+http://", "mlflow+https://")):
            raise InvalidInput(f"not an MLflow server URL (mlflow+http(s)://): {redact_url(url)!r}")
        self.url = url
        parts = urlsplit(url[len("mlflow+") :])
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        self._base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._auth: tuple[str, str] | None = None
        if parts.username is not None:
            self._auth = (unquote(parts.username), unquote(parts.password or ""))
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            self._auth = (
                os.environ["MLFLOW_TRACKING_USERNAME"],
                os.environ.get("MLFLOW_TRACKING_PASSWORD", ""),
            )
        self._token = token or os.environ.get("MLFLOW_TRACKING_TOKEN") or None
        root = str((storage_options or {}).get("root") or DEFAULT_ROOT).strip("/")
        if not root or any(p in ("", ".", "..") for p in root.split("/")):
            raise InvalidInput(f"invalid root {root!r} for the MLflow artifact store")
        self.root = root
        super().__init__(timeout)

    server_name = "MLflow server"
    credentials_hint = (
        "pass Client(token=…) or set MLFLOW_TRACKING_TOKEN "
        "(or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)"
    )

    def _make_http(self, httpx: Any, headers: dict[str, str]) -> Any:
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return httpx.Client(
            base_url=self._base,
            headers=headers,
            auth=self._auth if not self._token else None,
            timeout=httpx.Timeout(self._timeout, connect=10.0),
            transport=httpx.HTTPTransport(retries=2),
        )

    # --- requests -------------------------------------------------------------------------

    def _key(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256}"

    def _url(self, key: str) -> str:
        return f"{PROXY}/{quote(key, safe='/')}"

    def _head(self, sha256: str) -> dict[str, str] | None:
        """The headers of the blob's download (its size and time), or None if missing."""
        resp = self._send("GET", self._url(self._key(sha256)), stream=True)
        try:
            if resp.status_code == 404:
                return None
            self._check(resp, f"reading blob {sha256}")
            return {k.lower(): v for k, v in resp.headers.items()}
        finally:
            resp.close()

    # --- writes ---------------------------------------------------------------------------

    def _put_file(self, path: Path, sha256: str | None) -> BlobInfo:
        if sha256 is None:
            sha256, size = sha256_of_file(path)
        else:
            size = path.stat().st_size
        if self._head(sha256) is not None:
            return BlobInfo(sha256, size, False)
        with open(path, "rb") as fh:
            resp = self._send(
                "PUT",
                self._url(self._key(sha256)),
                content=fh,
                headers={"Content-Type": "application/octet-stream"},
            )
        self._check(resp, f"storing {path}")
        return BlobInfo(sha256, size, True)

    def _put_bytes(self, data: bytes, sha256: str) -> BlobInfo:
        if self._head(sha256) is not None:
            return BlobInfo(sha256, len(data), False)
        resp = self._send(
            "PUT",
            self._url(self._key(sha256)),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(resp, f"storing blob {sha256}")
        return BlobInfo(sha256, len(data), True)

    def _delete(self, sha256: str) -> None:
        resp = self._send("DELETE", self._url(self._key(sha256)))
        if resp.status_code != 404:
            self._check(resp, f"deleting blob {sha256}")

    # --- reads ----------------------------------------------------------------------------

    def _exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def _size(self, sha256: str) -> int:
        headers = self._head(sha256)
        if headers is None:
            raise FileNotFoundError(sha256)
        if "content-length" in headers:
            return int(headers["content-length"])
        with self._open(sha256) as fh:
            return len(fh.read())

    def _modified(self, sha256: str) -> float | None:
        headers = self._head(sha256)
        if headers is None or "last-modified" not in headers:
            return None
        try:
            return parsedate_to_datetime(headers["last-modified"]).timestamp()
        except (TypeError, ValueError):
            return None

    def _open(self, sha256: str) -> BinaryIO:
        resp = self._send("GET", self._url(self._key(sha256)), stream=True)
        try:
            self._check(resp, f"opening blob {sha256}")
        except BaseException:
            resp.close()
            raise
        return io.BufferedReader(_ResponseReader(resp), _CHUNK)  # type: ignore[return-value]

    def _get_file(self, sha256: str, dest: Path) -> None:
        resp = self._send("GET", self._url(self._key(sha256)), stream=True)
        try:
            self._check(resp, f"downloading blob {sha256}")
            with open(dest, "wb") as out:
                for chunk in resp.iter_bytes(_CHUNK):
                    out.write(chunk)
        finally:
            resp.close()

    def _list(self, key: str) -> list[dict[str, Any]]:
        resp = self._send("GET", PROXY, params={"path": key})
        self._check(resp, f"listing {key}")
        return list(resp.json().get("files", ())) if resp.content else []

    def _iter_blobs(self) -> Iterator[str]:
        for folder in self._list(self.root):
            if not folder.get("is_dir"):
                continue
            prefix = str(folder["path"]).rsplit("/", 1)[-1]
            for entry in self._list(f"{self.root}/{prefix}"):
                if not entry.get("is_dir"):
                    yield str(entry["path"]).rsplit("/", 1)[-1]
