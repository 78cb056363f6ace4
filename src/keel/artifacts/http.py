"""The artifact store behind a keel platform server: blobs moved through its REST API.

This module owns :class:`HttpArtifactStore`, what ``keel.Client("http://host:port")`` uses
when no other artifact store is configured, so a team needs to reach only the server.

Uploads stream the file from disk (never read whole into memory) to
``PUT /api/v1/blobs/<sha256>``; the server hashes what arrives and refuses bytes that do
not match. A blob the server already has is not sent again: ``POST …/<sha256>/reuse``
claims it (refreshing its time for ``keel gc``'s grace period). Downloads stream to a
temporary file that the base class verifies against the sha256 before it takes its name.

It speaks HTTP itself rather than through :mod:`keel.store.http`: artifact stores and
metadata stores sit side by side in keel's layers and do not import each other.
"""

from __future__ import annotations

import io
import os
import re
import threading
from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from keel.artifacts.base import ArtifactStore, BlobInfo, redact_url, sha256_of_file
from keel.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidInput,
    StoreUnavailable,
)

__all__ = ["HttpArtifactStore", "RemoteArtifactStore"]

API_PREFIX = "/api/v1"  # keel.server.app.API_PREFIX (not importable from here)
TOKEN_ENV = "KEEL_TOKEN"
_CHUNK = 1 << 20
_SECRET = re.compile(r"keel_[A-Za-z0-9_\-]+")


def _safe(text: str) -> str:
    return _SECRET.sub("keel_***", redact_url(text))


class RemoteArtifactStore(ArtifactStore):
    """What the artifact stores behind a server (keel's, MLflow's) share: one keep-alive
    ``httpx.Client`` made on first use (:meth:`_make_http`), transport failures and refusals
    turned into keel errors naming the server, and streamed downloads."""

    #: what the server is, for messages ("keel server")
    server_name = "server"
    #: what to do when the server refuses the credentials
    credentials_hint = ""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._http: Any = None
        self._lock = threading.Lock()

    @abstractmethod
    def _make_http(self, httpx: Any, headers: dict[str, str]) -> Any:
        """The ``httpx.Client`` for this server: base URL, credentials, ``headers`` added."""

    @property
    def http(self) -> Any:
        """The ``httpx.Client`` (made on first use; keep-alive, shared by threads)."""
        if self._http is None:
            with self._lock:
                if self._http is None:
                    import httpx2 as httpx

                    from keel import __version__

                    self._http = self._make_http(httpx, {"User-Agent": f"keel/{__version__}"})
        return self._http

    def close(self) -> None:
        """Close the connections (a later call opens new ones)."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def _send(self, method: str, path: str, *, stream: bool = False, **kwargs: Any) -> Any:
        """Send a request; transport failures become StoreUnavailable naming the server."""
        import httpx2 as httpx

        try:
            request = self.http.build_request(method, path, **kwargs)
            return self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"artifact store {self._safe_url} is unreachable ({type(exc).__name__}: "
                f"{_safe(str(exc)) or 'no answer'}): is the {self.server_name} running?"
            ) from None

    def _check(self, resp: Any, action: str) -> None:
        """Raise the keel error of a refusal (404 becomes FileNotFoundError, which the base
        class reports as a missing blob)."""
        if resp.status_code < 400:
            return
        resp.read()
        message = _message(resp)
        if resp.status_code == 404:
            raise FileNotFoundError(message)
        if resp.status_code in (401, 403):
            raise AccessDenied(f"{message} ({action} at {self._safe_url}): {self.credentials_hint}")
        if resp.status_code in (502, 503, 504):
            raise StoreUnavailable(f"artifact store {self._safe_url} ({action}): {message}")
        raise ArtifactError(f"{action} failed in artifact store {self._safe_url}: {message}")


class HttpArtifactStore(RemoteArtifactStore):
    """Blobs of the keel platform server at ``url``.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8080``.
        token: an API token (``keel_…``); default env ``KEEL_TOKEN``. Uploads need an
            editor's token; listing and deleting blobs (``keel gc``) an admin's.
        timeout: seconds to wait for each read or write on the connection.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 300.0) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidInput(f"not a keel server URL (http:// or https://): {url!r}")
        self.url = url.rstrip("/")
        self._token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        super().__init__(timeout)

    server_name = "keel server"
    credentials_hint = (
        "create a token with `keel tokens create` and pass Client(token=…) or set KEEL_TOKEN"
    )

    @property
    def _safe_url(self) -> str:
        return _safe(self.url)

    def _make_http(self, httpx: Any, headers: dict[str, str]) -> Any:
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return httpx.Client(
            base_url=self.url + API_PREFIX,
            headers=headers,
            timeout=httpx.Timeout(self._timeout, connect=10.0),
            transport=httpx.HTTPTransport(retries=2),
        )

    # --- blobs ----------------------------------------------------------------------------

    def _info(self, sha256: str) -> dict[str, Any] | None:
        resp = self._send("GET", f"/blobs/{sha256}/info")
        if resp.status_code == 404:
            return None
        self._check(resp, f"reading blob {sha256}")
        return resp.json()

    # --- writes ---------------------------------------------------------------------------

    def _put_file(self, path: Path, sha256: str | None) -> BlobInfo:
        if sha256 is None:
            sha256, _ = sha256_of_file(path)
        reused = self._reuse(sha256)
        if reused is not None:
            return reused
        with open(path, "rb") as fh:
            resp = self._send(
                "PUT",
                f"/blobs/{sha256}",
                content=fh,
                headers={"Content-Type": "application/octet-stream"},
            )
        if resp.status_code == 422:
            raise IntegrityError(f"{path} changed while being stored: {_message(resp)}")
        self._check(resp, f"storing {path}")
        return _blob_info(resp.json())

    def _put_bytes(self, data: bytes, sha256: str) -> BlobInfo:
        resp = self._send(
            "PUT",
            f"/blobs/{sha256}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(resp, f"storing blob {sha256}")
        return _blob_info(resp.json())

    def _reuse(self, sha256: str) -> BlobInfo | None:
        """The stored blob, claimed for a new record; None if the server does not have it."""
        resp = self._send("POST", f"/blobs/{sha256}/reuse")
        if resp.status_code == 404:
            return None
        self._check(resp, f"reusing blob {sha256}")
        return _blob_info(resp.json())

    def _delete(self, sha256: str) -> None:
        resp = self._send("DELETE", f"/blobs/{sha256}")
        if resp.status_code != 404:
            self._check(resp, f"deleting blob {sha256}")

    def _remove_partials(self, older_than_seconds: float) -> int:
        resp = self._send(
            "POST", "/gc/remove-partials", json={"older_than_seconds": older_than_seconds}
        )
        self._check(resp, "removing temporary files")
        return int(resp.json()["removed"])

    # --- reads ----------------------------------------------------------------------------

    def _exists(self, sha256: str) -> bool:
        return self._info(sha256) is not None

    def _size(self, sha256: str) -> int:
        info = self._info(sha256)
        if info is None:
            raise FileNotFoundError(sha256)
        return int(info["size"])

    def _modified(self, sha256: str) -> float | None:
        info = self._info(sha256)
        return None if info is None else info.get("modified")

    def _open(self, sha256: str) -> BinaryIO:
        resp = self._send("GET", f"/blobs/{sha256}", stream=True)
        try:
            self._check(resp, f"opening blob {sha256}")
        except BaseException:
            resp.close()
            raise
        return io.BufferedReader(_ResponseReader(resp), _CHUNK)  # type: ignore[return-value]

    def _get_file(self, sha256: str, dest: Path) -> None:
        resp = self._send("GET", f"/blobs/{sha256}", stream=True)
        try:
            self._check(resp, f"downloading blob {sha256}")
            with open(dest, "wb") as out:
                for chunk in resp.iter_bytes(_CHUNK):
                    out.write(chunk)
        finally:
            resp.close()

    def _iter_blobs(self) -> Iterator[str]:
        resp = self._send("GET", "/blobs")
        self._check(resp, "listing blobs")
        yield from resp.json()


class _ResponseReader(io.RawIOBase):
    """A streamed HTTP response body as a readable binary file (closing it closes the
    response)."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self._chunks = resp.iter_bytes(_CHUNK)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
        super().close()


def _message(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"]).split("\n", 1)[0]
    return f"HTTP {resp.status_code} {resp.reason_phrase}"


def _blob_info(data: dict[str, Any]) -> BlobInfo:
    return BlobInfo(str(data["sha256"]), int(data["size"]), bool(data["uploaded"]))
