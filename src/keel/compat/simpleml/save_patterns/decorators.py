"""Registering save patterns (by name) and artifacts (which attribute is saved and restored)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keel.compat.simpleml.registries import LOAD_METHOD_REGISTRY, SAVE_METHOD_REGISTRY
from keel.compat.simpleml.utils.errors import SimpleMLError


def register_save_pattern(
    cls: type,
    save_pattern: str | None = None,
    save: bool = True,
    load: bool = True,
    overwrite: bool = False,
) -> None:
    """Use ``cls`` (``save(obj, folder, filepath, ...)`` → filepath data, ``load(folder,
    **filepath data)`` → obj) for ``save_pattern`` (default ``cls.SAVE_PATTERN``)."""
    if save_pattern is None:
        if not hasattr(cls, "SAVE_PATTERN"):
            raise SimpleMLError(
                f"cannot register {cls!r}: pass save_pattern= or set the class attribute "
                "SAVE_PATTERN"
            )
        save_pattern = cls.SAVE_PATTERN
    if save:
        SAVE_METHOD_REGISTRY.register(save_pattern, cls, allow_duplicates=overwrite)
    if load:
        LOAD_METHOD_REGISTRY.register(save_pattern, cls, allow_duplicates=overwrite)


def deregister_save_pattern(
    cls: type | None = None, save_pattern: str | None = None, save: bool = True, load: bool = True
) -> None:
    if save_pattern is None:
        if cls is None or not hasattr(cls, "SAVE_PATTERN"):
            raise SimpleMLError(
                "cannot deregister: pass save_pattern= or a class with SAVE_PATTERN"
            )
        save_pattern = cls.SAVE_PATTERN
    if save:
        SAVE_METHOD_REGISTRY.drop(save_pattern)
    if load:
        LOAD_METHOD_REGISTRY.drop(save_pattern)


class SavePatternDecorators:
    """``@SavePatternDecorators.register_save_pattern`` (bare, or with a name)."""

    @staticmethod
    def register_save_pattern(
        cls_or_save_pattern: str | type | None = None,
        save: bool = True,
        load: bool = True,
        overwrite: bool = False,
    ) -> Any:
        name = cls_or_save_pattern if isinstance(cls_or_save_pattern, str) else None

        def register(cls: type) -> type:
            register_save_pattern(cls, name, save=save, load=load, overwrite=overwrite)
            return cls

        if isinstance(cls_or_save_pattern, type):
            return register(cls_or_save_pattern)
        return register

    @staticmethod
    def deregister_save_pattern(
        cls_or_save_pattern: str | type | None = None, save: bool = True, load: bool = True
    ) -> Any:
        name = cls_or_save_pattern if isinstance(cls_or_save_pattern, str) else None

        def deregister(cls: type) -> type:
            deregister_save_pattern(cls, name, save=save, load=load)
            return cls

        if isinstance(cls_or_save_pattern, type):
            return deregister(cls_or_save_pattern)
        return deregister


def register_artifact(
    cls: type, artifact_name: str, save_attribute: str, restore_attribute: str
) -> None:
    setattr(
        cls, f"_ARTIFACT_{artifact_name}", {"save": save_attribute, "restore": restore_attribute}
    )


def deregister_artifact(cls: type, artifact_name: str) -> None:
    if hasattr(cls, f"_ARTIFACT_{artifact_name}"):
        delattr(cls, f"_ARTIFACT_{artifact_name}")


class ExternalArtifactDecorators:
    """``@ExternalArtifactDecorators.register_artifact(artifact_name=, save_attribute=,
    restore_attribute=)``: which attribute is saved as the artifact and which is set on load."""

    @staticmethod
    def register_artifact(
        artifact_name: str, save_attribute: str, restore_attribute: str
    ) -> Callable[[type], type]:
        def register(cls: type) -> type:
            register_artifact(cls, artifact_name, save_attribute, restore_attribute)
            return cls

        return register

    @staticmethod
    def deregister_artifact(artifact_name: str) -> Callable[[type], type]:
        def deregister(cls: type) -> type:
            deregister_artifact(cls, artifact_name)
            return cls

        return deregister
