"""A persistable's ``hash_``: keel's deterministic value hashing (:mod:`keel.hashing`) of what
SimpleML hashes (data frames, configs, transformers and their parameters).

Values keel hashes directly (numbers, text, containers, numpy arrays, pandas frames) hash as
keel hashes them; an estimator or transformer hashes as its class and ``get_params()``; a
class or function as its qualified name; another object as its class and attributes. The
same content gives the same hash in every process.
"""

from __future__ import annotations

import inspect
from typing import Any

from keel.compat.simpleml.utils.errors import SimpleMLError

_MAX_DEPTH = 50


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"


def _plain(obj: Any, depth: int = 0) -> Any:
    """``obj`` with what keel cannot hash replaced by a hashable description."""
    if depth > _MAX_DEPTH:
        raise SimpleMLError("cannot hash the persistable: a value is nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return obj
    module = type(obj).__module__
    if module.startswith(("numpy", "pandas")):
        return obj
    if isinstance(obj, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return {_plain(v, depth + 1) for v in obj}
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return ("callable", _qualname(obj))
    get_params = getattr(obj, "get_params", None)
    if callable(get_params):
        try:
            params = get_params(deep=False)
        except TypeError:
            params = get_params()
        return ("object", _qualname(type(obj)), _plain(params, depth + 1))
    attrs = getattr(obj, "__dict__", None)
    if attrs is not None:
        public = {k: v for k, v in attrs.items() if not k.startswith("_")}
        return ("object", _qualname(type(obj)), _plain(public, depth + 1))
    return ("object", _qualname(type(obj)), repr(obj))


class CustomHasherMixin:
    """``custom_hasher(obj)``: the sha256 hex keel's hashing gives ``obj``."""

    @staticmethod
    def custom_hasher(obj: Any, *args: Any, **kwargs: Any) -> str:
        from keel.errors import InvalidInput
        from keel.hashing import hash_value

        try:
            return hash_value(_plain(obj))
        except InvalidInput as exc:
            raise SimpleMLError(f"cannot hash the persistable: {exc}") from None
