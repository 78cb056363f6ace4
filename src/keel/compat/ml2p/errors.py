"""ML2P's exceptions: ``from ml2p.errors import …`` becomes ``from keel.compat.ml2p.errors``.

A predictor raises :class:`ClientError` (400) or :class:`ServerError` (500), or an
:class:`APIError` with its own status; keel's prediction API answers them as ML2P does:
``{"message": …, "details": [...]}`` with that status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "ClientError",
    "ConfigError",
    "LocalEnvError",
    "NamingError",
    "ServerError",
]


class NamingError(Exception):
    """A training job, model or endpoint name does not follow ML2P's convention."""


class ConfigError(Exception):
    """The configuration in the ML2P project file is invalid."""


class LocalEnvError(Exception):
    """An error specific to working with a local environment."""


class APIError(Exception):
    """An error answered by the prediction API: ``{"message", "details"}`` with ``code``.

    Args:
        message: the error message.
        details: None, a string or a list of strings.
        status_code: the HTTP status (default: the class's ``code``, 500).
    """

    code = 500

    def __init__(
        self, message: str, details: str | list[Any] | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        if details is None:
            details = []
        elif isinstance(details, str):
            details = [details]
        self.details = list(details)
        if status_code is not None:
            self.code = status_code
        self.message = message
        self.description = message

    @property
    def status_code(self) -> int:
        return self.code

    def get_body(self, environ: Any = None) -> dict[str, Any]:
        """The answer's JSON body."""
        return {"message": self.message, "details": self.details}

    def get_headers(self, environ: Any = None) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json")]


class ServerError(APIError):
    """The server failed while processing a request (500)."""

    code = 500


class ClientError(APIError):
    """The client invoked the prediction endpoint with invalid inputs (400)."""

    code = 400
