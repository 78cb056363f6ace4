"""The error hierarchy every part of keel raises.

Callers catch :class:`KeelError` to handle anything keel refuses or cannot do; the
subclasses say why. Messages are one line a person understands: what, where, and what to do.
"""

from __future__ import annotations


class KeelError(Exception):
    """Base class of every error keel raises on purpose."""


class ConfigError(KeelError):
    """The configuration (keel.yml, environment variables, arguments) is wrong."""


class NotFound(KeelError, LookupError):
    """A named or identified object does not exist in the store."""


class NotInProject(NotFound):
    """A named experiment, model or dataset is not in the project asked for.

    Attributes:
        kind: ``experiment``, ``model`` or ``dataset``.
        name: the name asked for.
        project: the project searched.
        elsewhere: the other projects of the same store that hold one of that name.
    """

    def __init__(
        self,
        message: str,
        kind: str = "",
        name: str = "",
        project: str = "",
        elsewhere: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.project = project
        self.elsewhere = elsewhere


class Conflict(KeelError):
    """The request contradicts what the store already holds (e.g. a param logged twice)."""


class InvalidInput(KeelError, ValueError):
    """A value given by the caller is malformed: a name, a key, a query, a path."""


class QueryTooComplex(InvalidInput):
    """A query beyond what keel runs: nested too deep, too many conditions or values, or more
    than the database can compile. The message names the limit; simplifying the query is the
    fix (the store is fine)."""


class QueryTimeout(InvalidInput):
    """A query ran past its time budget (the server's ``server.query_timeout_s``) and was
    stopped; narrowing the query is the fix (the store is fine)."""


class IllegalPath(InvalidInput):
    """A local path the call must not use: an export into the cache, inside it or above it
    (mlopus' ``IllegalPath``)."""


class NotSupported(KeelError):
    """The backend cannot do this at all (e.g. ``keel gc`` against an MLflow server): the
    message says what to use instead."""


class Offline(KeelError):
    """The call needs the store, but the client is in offline mode."""


class StoreUnavailable(KeelError):
    """The metadata store or the artifact store cannot be reached."""


class ExecutorUnavailable(KeelError):
    """The executor jobs are submitted to cannot be reached (e.g. a Dask scheduler)."""


class ArtifactError(KeelError):
    """An artifact could not be written, read or verified."""


class IntegrityError(ArtifactError):
    """An artifact's content no longer matches the hash recorded for it."""


class DataError(KeelError):
    """A data source or sink could not be read or written: a missing file, a malformed
    CSV, an unreachable database, a failing query."""


class AccessDenied(KeelError):
    """The platform server refused the caller: no token, an unknown or revoked token, or a
    role too low for the call."""
