"""SimpleML's registries: persistable classes by ``registered_name`` and save/load patterns
by name.

Every class made with a persistable metaclass is registered under its class name, which is
how a stored record (its ``registered_name``) finds its class again when loaded.
"""

from __future__ import annotations

import logging
from abc import ABCMeta
from typing import Any

from keel.compat.simpleml.utils.errors import SimpleMLError

log = logging.getLogger("keel.compat.simpleml")


class Registry:
    """A name → class mapping."""

    def __init__(self) -> None:
        self.registry: dict[str, Any] = {}

    def register(self, key: str, cls: Any, allow_duplicates: bool = True) -> None:
        if key in self.registry and self.registry[key] is not cls:
            if not allow_duplicates:
                raise SimpleMLError(
                    f"{key!r} is already registered to {self.registry[key]!r}: pass "
                    "overwrite=True to replace it"
                )
            log.debug("replacing the registration of %s", key)
        self.registry[key] = cls

    def get(self, key: str) -> Any:
        return self.registry.get(key)

    def drop(self, key: str) -> None:
        self.registry.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self.registry


SIMPLEML_REGISTRY = Registry()
SAVE_METHOD_REGISTRY = Registry()
LOAD_METHOD_REGISTRY = Registry()


class MetaRegistry(ABCMeta):
    """Registers every class it makes under its name in ``SIMPLEML_REGISTRY``."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        cls = super().__new__(mcs, name, bases, attrs)
        SIMPLEML_REGISTRY.register(cls.__name__, cls)
        return cls


PersistableRegistry = DatasetRegistry = PipelineRegistry = ModelRegistry = MetricRegistry = (
    MetaRegistry
)
