"""The files of a model version, and writing and reading them.

::

    keel-model.json        manifest: model, label, style, run, formats, libraries, metrics
    code.cloudpickle       the model object; the project's own modules pickled by value
    fitted.<format>        the fitted model, once per save format
    files/                 what the model wrote to ctx.model_dir

The manifest names the run that trained the version, so two trainings never share content
(and every training is a new version). Loading runs code from the pickles: keel loads a
version only after its files match the registered content hash.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel import __version__
from keel.errors import ArtifactError, KeelError
from keel.models.base import Model
from keel.models.formats import SavedFile, load_fitted, save_fitted

MANIFEST = "keel-model.json"
CODE = "code.cloudpickle"
FILES = "files"
FORMAT = "keel.model/1"


@dataclass
class Manifest:
    """What ``keel-model.json`` says about a model version's files."""

    model: str
    label: str | None
    style: str
    model_class: str
    run_id: str | None
    trained_at: float
    fitted: list[SavedFile]
    libraries: dict[str, str]
    model_conf: dict[str, Any] = field(default_factory=dict)
    keel_version: str = __version__
    python: str = field(default_factory=lambda: sys.version.split()[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": self.model,
            "label": self.label,
            "style": self.style,
            "model_class": self.model_class,
            "run_id": self.run_id,
            "trained_at": self.trained_at,
            "fitted": [{"format": f.format, "file": f.file} for f in self.fitted],
            "libraries": self.libraries,
            "model_conf": self.model_conf,
            "keel_version": self.keel_version,
            "python": self.python,
        }

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(
                f"{folder} has no {MANIFEST}: it was not saved by keel train"
            ) from None
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
        if data.get("format") != FORMAT:
            raise ArtifactError(f"{path}: unknown format {data.get('format')!r}")
        return cls(
            model=data["model"],
            label=data.get("label"),
            style=data.get("style", "keel"),
            model_class=data.get("model_class", ""),
            run_id=data.get("run_id"),
            trained_at=data.get("trained_at", 0.0),
            fitted=[SavedFile(f["format"], f["file"]) for f in data.get("fitted", [])],
            libraries=dict(data.get("libraries", {})),
            model_conf=dict(data.get("model_conf", {})),
            keel_version=data.get("keel_version", ""),
            python=data.get("python", ""),
        )


def project_modules(base_dir: Path) -> list[str]:
    """Names of the imported modules whose files live in the project folder."""
    root = os.path.join(str(base_dir.resolve()), "")
    return [
        name
        for name, module in list(sys.modules.items())
        # __main__ (a script in the project calling keel's API) is pickled by value anyway;
        # cloudpickle refuses to unregister it
        if name != "__main__"
        and os.path.abspath(getattr(module, "__file__", None) or "/").startswith(root)
    ]


@contextmanager
def code_by_value(module_names: Sequence[str]) -> Iterator[None]:
    """Pickle these modules' classes and functions by value while the block runs, so a
    model version carries the code it was trained with."""
    import cloudpickle

    registered = []
    for name in module_names:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            cloudpickle.register_pickle_by_value(module)
        except ValueError:
            continue
        registered.append(module)
    try:
        yield
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def write_model_files(
    folder: Path,
    model: Model,
    fitted: Any,
    formats: Sequence[str],
    manifest: Manifest,
    base_dir: Path,
) -> Manifest:
    """Write code, fitted model and manifest into ``folder`` (``files/`` is already there)."""
    import cloudpickle

    from keel.models.libraries import libraries_in_use

    with code_by_value(project_modules(base_dir)):
        with (folder / CODE).open("wb") as handle:
            cloudpickle.dump(model, handle)
        manifest.fitted = [] if fitted is None else save_fitted(fitted, folder, formats)
    manifest.libraries = libraries_in_use()
    manifest.trained_at = manifest.trained_at or time.time()
    (folder / MANIFEST).write_text(
        json.dumps(manifest.to_json(), indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    return manifest


def read_model_code(folder: Path, what: str) -> Model:
    import pickle

    try:
        with (folder / CODE).open("rb") as handle:
            model = pickle.load(handle)
    except Exception as exc:
        raise ArtifactError(
            f"{what}: its stored model code could not be loaded ({type(exc).__name__}: {exc}); "
            "use --live-code to run the current code instead"
        ) from None
    if not isinstance(model, Model):
        raise ArtifactError(f"{what}: {CODE} does not hold a keel model")
    return model


def read_fitted(folder: Path, manifest: Manifest, what: str, code_loaded: bool = False) -> Any:
    """The fitted model, from the first of its saved formats that loads.

    With ``code_loaded`` (the version's pickled code was unpickled already, as it is unless
    ``--live-code``), formats that run code on load are tried first: a no-pickle format
    (skops) keeps no promise once pickled code ran, and importing skops costs seconds on
    every ``keel predict``. Both files are covered by the version's content hash.
    """
    if not manifest.fitted:
        return None
    saved = manifest.fitted
    if code_loaded:
        saved = sorted(saved, key=lambda entry: not _runs_code_on_load(entry.format))
    return load_fitted(folder, saved, what)


def _runs_code_on_load(name: str) -> bool:
    from keel.models.formats import get_format

    try:
        return get_format(name).runs_code_on_load
    except KeelError:  # an unknown format: load_fitted reports it in its turn
        return False
