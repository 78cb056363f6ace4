"""Passing only the keyword arguments a function accepts."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def signature_kwargs_validator(function: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """``kwargs`` without the names ``function`` does not take (all of them if it takes ``**``)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in parameters}
