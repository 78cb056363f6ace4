"""What ``keel server`` runs with: the stores it serves and the access rules it enforces."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.config import Config
    from keel.config.models import JobsSection


@dataclass
class ServerSettings:
    """Resolved settings of one platform server (from the CLI, keel.yml and the environment).

    Args:
        store: metadata store URL or folder (as for :class:`keel.Client`).
        artifacts: artifact store URL (None: the store's default).
        project: the project new things are filed under when a request names none.
        anonymous_read: let callers without credentials read (never write).
        secret_key: signs session cookies (replicas must share it).
        max_upload_mb: the largest file a request may upload.
        job_timeout_s: how long a pipeline job may run before it is stopped.
        job_memory_mb: the address space a pipeline job may take (MB; None: no limit).
        secure_cookies: mark the session cookie ``Secure`` on every answer (it is marked
            anyway on requests that came over https, see :func:`keel.server.app.create_app`).
        work_dir: where uploaded pipelines and job folders live.
        storage_options: fsspec options of a remote artifact store (endpoint, credentials);
            empty: env ``KEEL_STORAGE_OPTIONS``, else keel.yml ``store.storage_options``.
        executor: where pipeline jobs run: ``local``, ``dask`` or a registered name.
        jobs: keel.yml's ``jobs:`` section (the Dask scheduler …); None: its defaults.
        jobs_dir: where job records live (None: ``work_dir/jobs``).
        max_request_mb: the largest JSON or form body of a logged-in caller.
        max_artifact_mb: the largest artifact streamed to the store through the server.
        max_anonymous_request_kb: the largest body of a caller without credentials.
        max_json_depth: how deep a JSON body or query may nest.
        header_timeout_s: how long a client may take to send a request's headers.
        body_timeout_s: the longest pause while a client sends a body.
        query_timeout_s: how long one query may run.
        login_free_attempts: failed logins per user or address before they are slowed.
        login_max_delay_s: the longest wait imposed after failed logins.
        mlflow_artifact_root: MLflow's ``--default-artifact-root``: where an MLflow
            experiment without a location of its own keeps its files (``<root>/<id>``; the
            client writes there itself); None: through the server into keel's store.
    """

    store: str
    artifacts: str | None = None
    project: str = "default"
    host: str = "127.0.0.1"
    port: int = 8080
    anonymous_read: bool = False
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    max_upload_mb: float = 50.0
    job_timeout_s: float = 600.0
    job_memory_mb: int | None = 2048
    secure_cookies: bool = False
    work_dir: Path | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    executor: str = "local"
    jobs: JobsSection | None = None
    jobs_dir: Path | None = None
    max_request_mb: float = 8.0
    max_artifact_mb: float = 10240.0
    max_anonymous_request_kb: float = 64.0
    max_json_depth: int = 32
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    query_timeout_s: float = 10.0
    login_free_attempts: int = 5
    login_max_delay_s: float = 900.0
    mlflow_artifact_root: str | None = None

    @property
    def loopback_only(self) -> bool:
        """Whether the server listens on a loopback address only."""
        if self.host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def resolve(
        cls,
        config_path: str | os.PathLike[str] | None = None,
        *,
        store: str | None = None,
        artifacts: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> ServerSettings:
        """Settings from keel.yml's ``server:`` and ``store:``, overridden by arguments."""
        from keel.config import load_config
        from keel.jobs.settings import jobs_dir_for, jobs_section
        from keel.tracking.settings import embedded_folder, resolve_settings

        config = load_config(config_path)
        section = config.settings.server
        client = resolve_settings(store, artifacts, None, None, config_path)
        jobs = jobs_section(config)  # where pipeline jobs run, their records beside keel jobs'

        secret = section.secret_key or os.environ.get(section.secret_key_var) or None
        folder = embedded_folder(client.store)
        return cls(
            # made absolute once, here: pipeline jobs run in their code's folder and must
            # write into this store, not a ./.keel of their own
            store=absolute_location(client.store),
            artifacts=absolute_location(client.artifacts) if client.artifacts else None,
            project=client.project,
            host=host or section.host,
            port=port or section.port,
            anonymous_read=section.anonymous_read,
            max_upload_mb=section.max_upload_mb,
            job_timeout_s=section.job_timeout_s,
            job_memory_mb=section.job_memory_mb,
            secure_cookies=section.secure_cookies,
            work_dir=_work_dir(config, section.work_dir, folder or client.cache_dir),
            storage_options=dict(client.storage_options),
            executor=jobs.executor,
            jobs=jobs,
            jobs_dir=jobs_dir_for(config, client),
            max_request_mb=section.max_request_mb,
            max_artifact_mb=section.max_artifact_mb,
            max_anonymous_request_kb=section.max_anonymous_request_kb,
            max_json_depth=section.max_json_depth,
            header_timeout_s=section.header_timeout_s,
            body_timeout_s=section.body_timeout_s,
            query_timeout_s=section.query_timeout_s,
            login_free_attempts=section.login_free_attempts,
            login_max_delay_s=section.login_max_delay_s,
            mlflow_artifact_root=section.mlflow_artifact_root,
            **({"secret_key": secret} if secret else {}),
        )


def _work_dir(config: Config, configured: str | None, default_parent: Path) -> Path:
    """keel.yml's ``server.work_dir`` (relative to the file), else ``server/`` beside an
    embedded store or in the local cache."""
    if not configured:
        return default_parent / "server"
    path = Path(configured).expanduser()
    return (path if path.is_absolute() else config.base_dir / path).resolve()


def absolute_location(url: str) -> str:
    """A store or artifact location with a relative local path made absolute (against the
    working folder): ``.keel`` → ``/home/ann/project/.keel``, ``sqlite:///keel.db`` →
    ``sqlite:////home/ann/project/keel.db``. URLs of servers and buckets are unchanged."""
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    for scheme in ("sqlite:///", "file://"):
        if url.startswith(scheme):
            path = url[len(scheme) :]
            if path and path != ":memory:" and not path.startswith("/"):
                return scheme + str(Path(path).expanduser().resolve())
    return url
