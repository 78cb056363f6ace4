"""What a run ran on: Python, platform, host, keel and the installed distributions.

Read once per process from ``importlib.metadata`` (no pip subprocess), then reused.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys
from typing import Any


@functools.cache
def installed_distributions() -> dict[str, str]:
    """{distribution name: version} of every installed distribution, sorted by name."""
    from importlib.metadata import distributions

    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        if name:
            found.setdefault(name.lower(), dist.version)
    return dict(sorted(found.items()))


@functools.cache
def _static_environment() -> dict[str, Any]:
    from keel import __version__

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "keel_version": __version__,
        "packages": installed_distributions(),
    }


def capture_environment() -> dict[str, Any]:
    """The environment of this process, as recorded on each run."""
    env = dict(_static_environment())
    env["pid"] = os.getpid()
    env["cwd"] = os.getcwd()
    namespace = pid_namespace()
    if namespace is not None:
        env["pid_namespace"] = namespace
    return env


def pid_namespace() -> str | None:
    """Which PID namespace this process is in (Linux: ``pid:[4026531836]``), else None.

    Two containers may share a host name but not their pids: ``keel doctor --repair`` judges
    a run's process only from the namespace it ran in.
    """
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def current_author() -> str:
    """Who is running keel: ``KEEL_AUTHOR``, else the login name."""
    author = os.environ.get("KEEL_AUTHOR")
    if author:
        return author
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"
