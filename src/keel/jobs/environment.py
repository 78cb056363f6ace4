"""What a job's process inherits from the process that starts it: an allow-list, never all.

A job runs code keel did not write (an uploaded pipeline, a model's ``train``), so it gets
the environment variables a Python process and keel's stores need, the ones keel.yml names
under ``jobs.env``, and what its :class:`~keel.jobs.JobSpec` sets (the store settings): never
the server's session key, and no other variable of the process that starts it.

:func:`job_environment` builds that environment; every place keel starts a job's process
goes through it (the local executor's supervisor, the Dask executor's watcher, the server's
``get_params`` subprocess). The allow-list:

* the process: ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``LANG``, ``LANGUAGE``, ``LC_*``,
  ``TZ``, ``TMPDIR``/``TEMP``/``TMP``, ``SYSTEMROOT``; Python's ``PYTHONPATH``,
  ``PYTHONHOME``, ``VIRTUAL_ENV``, ``PYTHONHASHSEED``, ``PYTHONUNBUFFERED``,
  ``PYTHONDONTWRITEBYTECODE``, ``PYTHONIOENCODING``, ``PYTHONUTF8``; native libraries'
  ``LD_LIBRARY_PATH``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
  ``CUDA_VISIBLE_DEVICES``; TLS and proxies: ``SSL_CERT_FILE``, ``SSL_CERT_DIR``,
  ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``HTTP(S)_PROXY``, ``NO_PROXY`` (either case);
* keel's own: ``KEEL_STORE``, ``KEEL_ARTIFACTS``, ``KEEL_PROJECT``, ``KEEL_CACHE_DIR``,
  ``KEEL_STORAGE_OPTIONS``, ``KEEL_TOKEN``, ``KEEL_AUTHOR``, ``KEEL_LOG_LEVEL``,
  ``KEEL_DASK_SCHEDULER``, ``KEEL_JOB_KILL_GRACE_S`` (not ``KEEL_CONFIG``: a job is given its
  store, and the server's keel.yml may read variables the job does not get);
* the credentials keel's stores read from the environment: S3 (``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, ``AWS_REGION``,
  ``AWS_ENDPOINT_URL*``, ``AWS_PROFILE``, ``AWS_CONFIG_FILE``, ``AWS_SHARED_CREDENTIALS_FILE``,
  ``AWS_CA_BUNDLE`` and the web-identity and container-credential variables), PostgreSQL's
  libpq (``PGHOST``, ``PGPASSWORD``, ``PGPASSFILE``, ``PGSSLMODE``…), an MLflow server
  (``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``…),
  Google Cloud Storage (``GOOGLE_APPLICATION_CREDENTIALS``) and Azure (``AZURE_STORAGE_*``).

The session key (``KEEL_SECRET_KEY``, or the variable ``server.secret_key_var`` names) is
withheld whatever the lists say, and so is any variable holding the same value: keel.yml
listing it in ``jobs.env`` is refused when the config is read (:func:`check_jobs_env`).

A job runs as the same operating-system user as the process that started it, and such a
process may read another's ``/proc/<pid>/environ``: :func:`hide_environment` (called by the
platform server before it starts its first job) turns that off for the calling process.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.config import Config

__all__ = [
    "ALLOWED",
    "ALLOWED_PREFIXES",
    "SECRET_KEY_VAR",
    "JobEnvironment",
    "check_jobs_env",
    "hide_environment",
    "job_environment",
]

#: the variable that holds the server's session key unless keel.yml names another
SECRET_KEY_VAR = "KEEL_SECRET_KEY"

_PROCESS = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",  # Windows: Python cannot start a subprocess without it
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
}
_KEEL = {
    "KEEL_STORE",
    "KEEL_ARTIFACTS",
    "KEEL_PROJECT",
    "KEEL_CACHE_DIR",
    "KEEL_STORAGE_OPTIONS",
    "KEEL_TOKEN",
    "KEEL_AUTHOR",
    "KEEL_LOG_LEVEL",
    "KEEL_DASK_SCHEDULER",
    "KEEL_JOB_KILL_GRACE_S",
}
_STORE_CREDENTIALS = {
    # S3 (s3fs and boto read these)
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    # PostgreSQL (libpq, through psycopg)
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
    "PGSSLMODE",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGGSSENCMODE",
    "PGTARGETSESSIONATTRS",
    "PGSYSCONFDIR",
    "PGCLIENTENCODING",
    "PGTZ",
    # an MLflow server as the store
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    # Google Cloud Storage
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
}
#: the variables every job gets when they are set
ALLOWED = frozenset(_PROCESS | _KEEL | _STORE_CREDENTIALS)
#: … and those starting with one of these
ALLOWED_PREFIXES = ("LC_", "AWS_ENDPOINT_URL", "AZURE_STORAGE_")
#: a withheld value shorter than this is not looked for in other variables (``1`` is too
#: common a value to withhold everywhere it appears)
_MIN_WITHHELD_VALUE = 8
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\*?$")


@dataclass(frozen=True)
class JobEnvironment:
    """What an executor lets its jobs inherit: the allow-list, ``names`` (keel.yml's
    ``jobs.env``: variable names, or prefixes ending in ``*``) and never ``withheld``.

    Example:
        >>> env = JobEnvironment(names=("ORACLE_HOME",)).build({"KEEL_STORE": "/srv/store"})
    """

    names: tuple[str, ...] = ()
    withheld: frozenset[str] = field(default_factory=lambda: frozenset({SECRET_KEY_VAR}))

    def build(
        self, extra: Mapping[str, str] | None = None, source: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The environment of a job's process (see :func:`job_environment`)."""
        return job_environment(extra, self.names, withheld=self.withheld, source=source)

    def named(self, source: Mapping[str, str] | None = None) -> dict[str, str]:
        """Only the variables ``names`` lists, from ``source`` (default: this process's
        environment), the withheld ones left out: what a job on another machine is sent."""
        source = os.environ if source is None else source
        chosen = {k: v for k, v in source.items() if _listed(k, self.names)}
        return _without_withheld(chosen, self.withheld, source)

    def withholding(self, names: Iterable[str]) -> JobEnvironment:
        """This environment, also withholding ``names``."""
        return replace(self, withheld=self.withheld | {n for n in names if n})


def job_environment(
    extra: Mapping[str, str] | None = None,
    names: Iterable[str] = (),
    *,
    withheld: Iterable[str] = (),
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment to start a job's process with.

    Args:
        extra: what the job's spec sets (its store settings …); wins over ``source``.
        names: more variables to pass along from ``source`` (keel.yml's ``jobs.env``); a
            name ending in ``*`` passes every variable starting with what comes before it.
        withheld: variables never passed, whatever the other arguments say, besides
            ``KEEL_SECRET_KEY`` (the server's ``server.secret_key_var``); nor is any
            variable whose value is one of theirs.
        source: the environment to take from (default: this process's).

    Returns:
        The allow-listed variables of ``source``, those ``names`` lists, and ``extra``.

    Example:
        >>> server = {"PATH": "/bin", "KEEL_SECRET_KEY": "k" * 32, "OTHER": "1"}
        >>> job_environment({"KEEL_STORE": "/srv/store"}, source=server)
        {'PATH': '/bin', 'KEEL_STORE': '/srv/store'}
    """
    source = os.environ if source is None else source
    names = tuple(names)
    env = {
        k: v
        for k, v in source.items()
        if k in ALLOWED or k.startswith(ALLOWED_PREFIXES) or _listed(k, names)
    }
    env.update(extra or {})
    return _without_withheld(env, frozenset(withheld) | {SECRET_KEY_VAR}, source)


def _listed(name: str, names: tuple[str, ...]) -> bool:
    for entry in names:
        if entry.endswith("*"):
            if name.startswith(entry[:-1]):
                return True
        elif name == entry:
            return True
    return False


def _without_withheld(
    env: dict[str, str], withheld: frozenset[str], source: Mapping[str, str]
) -> dict[str, str]:
    # A key copied under another name is the key still: withhold its value too.
    values = {
        value
        for n in withheld
        for value in (source.get(n), env.get(n))
        if value and len(value) >= _MIN_WITHHELD_VALUE
    }
    return {k: v for k, v in env.items() if k not in withheld and v not in values}


def check_jobs_env(config: Config) -> None:
    """Refuse a keel.yml whose ``jobs.env`` is not a list of variable names (or prefixes
    ending in ``*``), or names the session key: jobs never get it.

    Raises:
        ConfigError: one line naming the file's line and what to change.
    """
    section = config.settings.jobs
    if section is None or not section.env:
        return
    key_var = config.settings.server.secret_key_var
    where = config.where(("jobs", "env"))
    for name in section.env:
        if not _NAME.match(name):
            raise ConfigError(
                f"{where}: jobs.env: {name!r} is not an environment variable name "
                "(letters, digits and _, or a prefix ending in *, e.g. ORACLE_*)"
            )
        if name in (key_var, SECRET_KEY_VAR):
            raise ConfigError(
                f"{where}: jobs.env lists {name}, the server's session key "
                "(server.secret_key_var): jobs never get it, since a job that read it could "
                "sign itself an admin's session; remove it from jobs.env"
            )


#: prctl(2)'s option that says whether a process may be dumped, and read by its user
_PR_SET_DUMPABLE = 4


def hide_environment() -> bool:
    """Keep the other processes of this user, such as the jobs this process starts, from
    reading its environment and memory (``/proc/<pid>/environ``, ``/proc/<pid>/mem``,
    ``ptrace``): Linux's ``prctl(PR_SET_DUMPABLE, 0)``, which also turns off its core dumps.
    The programs it starts are not affected (a new program is dumpable again), and root still
    reads every process.

    Returns:
        Whether it is done (False off Linux, or when ``prctl`` is refused).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
