"""ML2P's hyperparameter encoding: nested JSON-able parameters as SageMaker's flat strings.

:func:`encode` turns ``{"a": {"b": 1}}`` into ``{"a.b": "1"}`` (keys without dots, values
JSON-encoded, each at most 256 characters, at most 100 keys); :func:`decode` reverses it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["HyperParameterEncodingError", "decode", "encode"]

MAX_LENGTH = 256
MAX_PARAMS = 100


class HyperParameterEncodingError(Exception):
    """Hyperparameters cannot be encoded within SageMaker's limits."""


def encode(params: dict[str, Any]) -> dict[str, str]:
    """A flat dict of strings from possibly nested, JSON-encodable ``params``."""
    result: dict[str, str] = {}
    for key, value in params.items():
        _check_key_format(key)
        if isinstance(value, dict):
            for sub_key, sub_value in encode(value).items():
                full = f"{key}.{sub_key}"
                _check_key_length(full)
                result[full] = sub_value
        else:
            text = json.dumps(value)
            _check_key_length(key)
            if len(text) > MAX_LENGTH:
                raise HyperParameterEncodingError(
                    f"Value {text!r} for key {key!r} must have length at most {MAX_LENGTH}."
                )
            result[key] = text
    if len(result) > MAX_PARAMS:
        raise HyperParameterEncodingError(
            f"SageMaker allows at most {MAX_PARAMS} hyperparameters but {len(result)}"
            " were specified."
        )
    return result


def decode(params: dict[str, str]) -> dict[str, Any]:
    """The nested parameters :func:`encode` flattened."""
    result: dict[str, Any] = {}
    for flat, text in params.items():
        parts = flat.split(".")
        key, target = parts[0], result
        for sub_key in parts[1:]:
            target = target.setdefault(key, {})
            key = sub_key
        target[key] = json.loads(text)
    return result


def _check_key_format(key: Any) -> None:
    if not isinstance(key, str) or "." in key:
        raise HyperParameterEncodingError(f"Key {key!r} must be a string without dots ('.')")


def _check_key_length(key: str) -> None:
    if len(key) > MAX_LENGTH:
        raise HyperParameterEncodingError(f"Key {key!r} must be at most {MAX_LENGTH} characters.")
