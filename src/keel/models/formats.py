"""Save formats: how a fitted model becomes files, and back.

One registry of named formats (as SimpleML's save patterns): ``cloudpickle`` (the
default), ``joblib``, and ``skops`` for scikit-learn objects — the one format that does not
run arbitrary code on load (it refuses types it does not trust). A model version may be
saved in several formats (``model.formats`` in keel.yml); loading tries them in order and
reports each failure. More formats register with :func:`register_format` or the
``keel.save_formats`` entry point group.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from keel.errors import ArtifactError, ConfigError

log = logging.getLogger("keel.models.formats")

F = TypeVar("F", bound=type["SaveFormat"])
_FORMATS: dict[str, type[SaveFormat]] = {}
_entry_points_read = False


class SaveFormat(ABC):
    """A way to write a fitted model to one file and read it back."""

    name: ClassVar[str]
    suffix: ClassVar[str]
    #: whether loading can run code stored in the file (pickle-based formats can)
    runs_code_on_load: ClassVar[bool] = True

    def can_save(self, obj: Any) -> str | None:
        """None if ``obj`` can be saved, else why not."""
        return None

    @abstractmethod
    def save(self, obj: Any, path: Path) -> None: ...

    @abstractmethod
    def load(self, path: Path) -> Any: ...


def register_format(cls: F) -> F:
    """Class decorator: make a :class:`SaveFormat` available under its ``name``."""
    _FORMATS[cls.name] = cls
    return cls


def _read_entry_points() -> None:
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    for ep in entry_points(group="keel.save_formats"):
        try:
            register_format(ep.load())
        except Exception as exc:  # a broken plugin must not hide the built-ins
            log.warning("save format plugin %s could not be loaded: %s", ep.name, exc)


def get_format(name: str) -> SaveFormat:
    if name not in _FORMATS:
        _read_entry_points()
    if name not in _FORMATS:
        known = ", ".join(sorted(_FORMATS))
        raise ConfigError(f"model.formats: unknown save format {name!r} (known: {known})")
    return _FORMATS[name]()


def known_formats() -> list[str]:
    _read_entry_points()
    return sorted(_FORMATS)


@register_format
class CloudpickleFormat(SaveFormat):
    """cloudpickle: saves almost anything, including lambdas and local classes."""

    name = "cloudpickle"
    suffix = ".cloudpickle"

    def save(self, obj: Any, path: Path) -> None:
        import cloudpickle

        with path.open("wb") as handle:
            cloudpickle.dump(obj, handle)

    def load(self, path: Path) -> Any:
        import pickle

        with path.open("rb") as handle:
            return pickle.load(handle)


@register_format
class JoblibFormat(SaveFormat):
    """joblib: pickle with efficient storage of large numpy arrays."""

    name = "joblib"
    suffix = ".joblib"

    def save(self, obj: Any, path: Path) -> None:
        import joblib

        joblib.dump(obj, path)

    def load(self, path: Path) -> Any:
        import joblib

        return joblib.load(path)


@register_format
class SkopsFormat(SaveFormat):
    """skops: scikit-learn objects without pickle; loading refuses untrusted types."""

    name = "skops"
    suffix = ".skops"
    runs_code_on_load = False

    def can_save(self, obj: Any) -> str | None:
        try:
            import skops.io  # noqa: F401
        except ImportError:
            return "skops is not installed (pip install skops)"
        return None

    def save(self, obj: Any, path: Path) -> None:
        import skops.io as sio

        sio.dump(obj, path)

    def load(self, path: Path) -> Any:
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=path)
        if untrusted:
            raise ArtifactError(f"skops will not load untrusted types: {', '.join(untrusted)}")
        return sio.load(path)


@dataclass(frozen=True)
class SavedFile:
    """One saved copy of the fitted model: its format and file name."""

    format: str
    file: str


def save_fitted(obj: Any, folder: Path, formats: Sequence[str]) -> list[SavedFile]:
    """Save ``obj`` into ``folder`` in each format; a format that cannot save it is skipped
    with a warning, and it is an error when none can."""
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[SavedFile] = []
    problems: list[str] = []
    for name in formats:
        fmt = get_format(name)
        reason = fmt.can_save(obj)
        if reason is None:
            path = folder / f"fitted{fmt.suffix}"
            try:
                fmt.save(obj, path)
            except Exception as exc:
                path.unlink(missing_ok=True)
                reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            saved.append(SavedFile(name, f"fitted{fmt.suffix}"))
        else:
            problems.append(f"{name}: {reason}")
            log.warning("could not save the fitted model as %s: %s", name, reason)
    if not saved:
        raise ArtifactError("the fitted model could not be saved: " + "; ".join(problems))
    return saved


def load_fitted(folder: Path, saved: Sequence[SavedFile], what: str) -> Any:
    """Load the first format that works, in order; say which failed and why."""
    failures: list[str] = []
    for entry in saved:
        try:
            obj = get_format(entry.format).load(folder / entry.file)
        except Exception as exc:
            failures.append(f"{entry.format}: {type(exc).__name__}: {exc}")
            continue
        for failure in failures:
            log.warning("%s: loaded as %s after %s", what, entry.format, failure)
        return obj
    tried = "; ".join(failures) or "no saved formats"
    raise ArtifactError(f"{what}: the fitted model could not be loaded ({tried})")
