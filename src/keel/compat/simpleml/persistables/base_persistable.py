"""The persistable contract: identity, versions, metadata, and external files by save pattern.

A persistable has an ``id`` (uuid4), a ``hash_`` of its content (``_hash()``), its
``registered_name`` (class name), ``author``, ``project``, ``name``, a ``version`` numbered
per name and kind, a ``version_description``, ``metadata_`` (``config``, ``state``,
``library_versions``) and ``filepaths`` (per artifact, per save pattern). ``save()`` records
it in keel (:mod:`keel.compat.simpleml.records`); loading restores its external files by
trying its save patterns in order.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from keel.compat.simpleml.persistables.hashing import CustomHasherMixin
from keel.compat.simpleml.registries import (
    LOAD_METHOD_REGISTRY,
    SAVE_METHOD_REGISTRY,
    PersistableRegistry,
)
from keel.compat.simpleml.utils.errors import SimpleMLError

log = logging.getLogger("keel.compat.simpleml")


class Persistable(CustomHasherMixin, metaclass=PersistableRegistry):
    """Base class of every SimpleML object that is saved: datasets, pipelines, models, metrics."""

    object_type: ClassVar[str] = "PERSISTABLE"
    #: attributes besides the common ones that a saved record keeps (relations, results)
    record_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        id: uuid.UUID | str | None = None,
        hash_: str | None = None,
        name: str | None = "default",
        has_external_files: bool = False,
        author: str | None = "default",
        project: str | None = "default",
        version: int | None = None,
        version_description: str | None = "",
        save_patterns: dict[str, list[str]] | None = None,
        filepaths: dict[str, Any] | None = None,
        metadata_: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.registered_name: str = type(self).__name__
        self.id: uuid.UUID = uuid.UUID(str(id)) if id is not None else uuid.uuid4()
        self.author = author
        self.project = project
        self.name = name
        self.has_external_files = has_external_files
        self.version_description = version_description
        self.hash_ = hash_
        self.version = version
        self.filepaths: dict[str, Any] = filepaths or {}
        self.metadata_: dict[str, Any] = metadata_ or {}
        self.metadata_.setdefault("config", {})
        self.metadata_.setdefault("state", {})
        save_patterns = save_patterns or self.state.get("save_patterns")
        if has_external_files and save_patterns is None:
            raise SimpleMLError(
                f"{type(self).__name__} {name!r} has external artifacts but no save patterns: "
                "pass save_patterns={artifact_name: [pattern, ...]}"
            )
        # operational, not content: kept in state so it does not change the hash
        self.state["save_patterns"] = save_patterns
        self.unloaded_artifacts: list[str] = []

    def __post_restore__(self) -> None:
        self._configure_unmapped_attributes()

    def _configure_unmapped_attributes(self) -> None:
        self.unloaded_artifacts = list(self.filepaths) if isinstance(self.filepaths, dict) else []

    # --- metadata ------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata_["config"]

    @property
    def state(self) -> dict[str, Any]:
        return self.metadata_["state"]

    @property
    def library_versions(self) -> dict[str, str]:
        return self.metadata_.get("library_versions", {})

    @abstractmethod
    def _hash(self) -> str:
        """A hash of the content that identifies this object across processes."""

    # --- saving --------------------------------------------------------------------------

    def save(self, allow_duplication: bool | None = None) -> None:
        """Record this object in keel as the next version of its name (a tracked run).

        Content identical to a saved version (the same ``hash_``) returns that version
        (``id`` and ``version`` become the saved one's) unless ``allow_duplication=True``
        (or ``Database(allow_duplication=True)``), SimpleML's behaviour.
        """
        from keel.compat.simpleml import records

        records.save(self, allow_duplication)

    def _record_in_keel(self, run: Any, files: Path, allow_duplication: bool) -> None:
        """Kind-specific keel records made inside the save run (a dataset or model version)."""

    def _get_latest_version(self) -> int:
        from keel.compat.simpleml import records

        return records.next_version(self)

    def save_external_files(self, folder: Path) -> None:
        """Save every artifact with each of its save patterns into ``folder``."""
        save_params = {
            "persistable_id": str(self.id),
            "persistable_type": self.object_type,
            "overwrite": False,
        }
        for artifact_name, patterns in (self.state.get("save_patterns") or {}).items():
            obj = self.get_artifact(artifact_name)
            for save_pattern in patterns:
                self.save_external_file(
                    artifact_name=artifact_name,
                    save_pattern=save_pattern,
                    obj=obj,
                    folder=folder,
                    filepath=f"{self.object_type}-{self.id}-{artifact_name}",
                    **save_params,
                )

    def save_external_file(
        self, artifact_name: str, save_pattern: str, cls: type | None = None, **save_params: Any
    ) -> None:
        save_cls = cls or SAVE_METHOD_REGISTRY.get(save_pattern)
        if save_cls is None:
            raise SimpleMLError(
                f"{self.registered_name} {self.name!r}: no save pattern {save_pattern!r} is "
                f"registered (known: {', '.join(sorted(SAVE_METHOD_REGISTRY.registry))})"
            )
        filepath_data = save_cls.save(artifact_name=artifact_name, **save_params)
        self.filepaths.setdefault(artifact_name, {})[save_pattern] = filepath_data

    def get_artifact(self, artifact_name: str) -> Any:
        registered = getattr(self, f"_ARTIFACT_{artifact_name}", None)
        if registered is None:
            raise SimpleMLError(
                f"{self.registered_name} has no artifact {artifact_name!r}: register it with "
                "@ExternalArtifactDecorators.register_artifact"
            )
        return getattr(self, registered["save"])

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, **kwargs: Any) -> Persistable:
        """A persistable from its saved record, without running ``__init__``."""
        obj = cls.__new__(cls)
        for attr, value in kwargs.items():
            setattr(obj, attr, value)
        obj.__post_restore__()
        return obj

    def to_dict(self) -> dict[str, Any]:
        keys = (
            "id", "hash_", "registered_name", "author", "project", "name", "version",
            "version_description", "has_external_files", "metadata_", "filepaths",
            *self.record_attributes,
        )  # fmt: skip
        return {key: getattr(self, key, None) for key in keys}

    def load(self, load_externals: bool = True) -> Persistable:
        """Restore the external files now (``load_externals=True``) or on first use."""
        self._configure_unmapped_attributes()
        if load_externals:
            self.load_external_files()
        return self

    def load_external_files(self, artifact_name: str | None = None) -> None:
        """Restore artifacts, trying each one's save patterns in order; when none works, one
        error names every pattern tried and why it failed."""
        names = list(self.filepaths) if artifact_name is None else [artifact_name]
        for name in names:
            patterns = self.filepaths.get(name) or {}
            failures: list[str] = []
            for save_pattern in patterns:
                try:
                    obj = self.load_external_file(name, save_pattern)
                except Exception as exc:
                    failures.append(f"{save_pattern}: {type(exc).__name__}: {exc}")
                    log.warning("could not restore %s via %s (%s)", name, save_pattern, exc)
                    continue
                self.restore_artifact(name, obj)
                break
            else:
                tried = "; ".join(failures) or "no save patterns were recorded"
                raise SimpleMLError(
                    f"{self.registered_name} {self.name!r} version {self.version}: artifact "
                    f"{name!r} could not be restored ({tried})"
                )

    def load_external_file(
        self, artifact_name: str, save_pattern: str, cls: type | None = None
    ) -> Any:
        load_cls = cls or LOAD_METHOD_REGISTRY.get(save_pattern)
        if load_cls is None:
            raise SimpleMLError(f"no load pattern {save_pattern!r} is registered")
        saved = self.filepaths.get(artifact_name)
        if saved is None:
            raise SimpleMLError(f"no artifact {artifact_name!r} was saved")
        if save_pattern not in saved:
            raise SimpleMLError(f"artifact {artifact_name!r} was not saved with {save_pattern!r}")
        from keel.compat.simpleml import records

        data = saved[save_pattern]
        if not isinstance(data, dict):
            data = {"legacy": data}
        return load_cls.load(folder=records.artifact_folder(self, required=False), **data)

    def restore_artifact(self, artifact_name: str, obj: Any) -> None:
        registered = getattr(self, f"_ARTIFACT_{artifact_name}", None)
        if registered is None:
            raise SimpleMLError(
                f"{self.registered_name} has no artifact {artifact_name!r}: register it with "
                "@ExternalArtifactDecorators.register_artifact"
            )
        setattr(self, registered["restore"], obj)
        if artifact_name in getattr(self, "unloaded_artifacts", []):
            self.unloaded_artifacts.remove(artifact_name)

    def load_if_unloaded(self, artifact_name: str) -> None:
        if artifact_name in getattr(self, "unloaded_artifacts", []):
            self.load_external_files(artifact_name=artifact_name)
