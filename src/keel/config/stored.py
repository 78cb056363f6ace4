"""What of a config may be stored with a run or a model, and reading it back.

keel.yml's values come partly from the environment: a ``*_var`` key (``api_key_var:
SERVICE_KEY``) reads a secret, a ``${VAR}`` template fills in a variable. Only the config
as written ever leaves the process (see :mod:`keel.config.yamlfile`), so what keel stores
from it (a run's params, a model version's ``model_conf``) is :func:`as_written`: the values
keel uses, with each one that came from the environment put back as it was written. When a
stored model is loaded without its keel.yml, :func:`from_environment` reads those back from
the environment of the process that loads it: a secret is never in the store, it is where
the model runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from keel.config.yamlfile import _ENV_PATTERN, SECRET_SUFFIX

__all__ = ["as_written", "from_environment"]

_MISSING = object()


def as_written(resolved: Any, written: Any) -> Any:
    """``resolved`` with every value that came from the environment as it was written.

    Args:
        resolved: values as keel uses them (defaults included), e.g. a ``model:`` section.
        written: the same part of :meth:`keel.config.Config.snapshot`.

    Returns:
        A copy of ``resolved`` where a key filled by ``<key>_var: NAME`` is ``<key>_var:
        NAME`` again and a string filled from a ``${VAR}`` template is the template.
    """
    if isinstance(resolved, dict):
        given = written if isinstance(written, dict) else {}
        out: dict[str, Any] = {}
        for key, value in resolved.items():
            reference = given.get(f"{key}{SECRET_SUFFIX}") if key not in given else None
            if isinstance(reference, str):
                out[f"{key}{SECRET_SUFFIX}"] = reference
            else:
                out[key] = as_written(value, given.get(key, _MISSING))
        return out
    if isinstance(resolved, list):
        same = isinstance(written, list) and len(written) == len(resolved)
        return [as_written(r, written[i] if same else _MISSING) for i, r in enumerate(resolved)]
    if isinstance(written, str) and "$" in written and written != resolved:
        return written  # a ${VAR} template
    return resolved


def from_environment(stored: Any, env: Mapping[str, str]) -> Any:
    """Values from a part stored :func:`as_written`, read from ``env``.

    A ``<key>_var: NAME`` becomes ``<key>: env[NAME]`` (the key stays out when ``NAME`` is
    not set here); a ``${VAR}`` template is filled in (``${VAR:-default}`` uses its default,
    an unset ``${VAR}`` stays as written).
    """
    if isinstance(stored, dict):
        out: dict[str, Any] = {}
        for key, value in stored.items():
            target = key[: -len(SECRET_SUFFIX)]
            if key.endswith(SECRET_SUFFIX) and target and isinstance(value, str):
                if value in env:
                    out[target] = env[value]
                continue
            out[key] = from_environment(value, env)
        return out
    if isinstance(stored, list):
        return [from_environment(item, env) for item in stored]
    if isinstance(stored, str) and "$" in stored:

        def fill(match: re.Match[str]) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name in env:
                return env[name]
            return default if default is not None else match.group(0)

        return _ENV_PATTERN.sub(fill, stored)
    return stored
