"""ML2P's project file, ml2p.yml, read as keel settings.

An ML2P project runs on keel with its ml2p.yml unchanged: ``keel -c ml2p.yml …``, or just
``keel …`` in its folder (``./ml2p.yml`` is used when there is no keel.yml). A file is
taken for ML2P's when it has ML2P's required ``s3folder`` key (keel.yml has none). Its keys
map onto keel's settings:

==========================  ===========================================================
ml2p.yml                    keel
==========================  ===========================================================
``project``                 ``project``
``s3folder``                ``store.artifacts`` (env ``KEEL_ARTIFACTS`` still wins)
``models: {NAME: CLS}``     ``model: {name: NAME, module: …, class: …}`` for the model
                            picked with ``keel ml2p --model NAME`` (env
                            ``KEEL_ML2P_MODEL``), or the only one; ``CLS`` is
                            ``module.Class``, or a mapping whose ``model-defaults.cls``
                            is (ML2P's multi-model form)
``deploy.record_invokes``   ``api.record_invokes``
==========================  ===========================================================

Everything else (``defaults``, ``train``, ``dataset``, ``notebook``, the rest of
``deploy``: images, roles, instance types, VPCs) configures AWS and is accepted, unused
here; ``keel doctor`` lists those keys. The metadata store is keel's default (``./.keel``)
unless ``--store``/``KEEL_STORE`` says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.config.yamlfile import Document, Loc, Origin
from keel.errors import ConfigError

__all__ = [
    "ML2P_FILE_NAME",
    "MODEL_ENV",
    "Ml2pDocument",
    "is_ml2p_document",
    "model_classes",
    "read_ml2p_file",
    "translate",
]

ML2P_FILE_NAME = "ml2p.yml"
#: names the ``models:`` entry keel uses when ml2p.yml lists several
MODEL_ENV = "KEEL_ML2P_MODEL"
#: the keys keel uses; every other key is for AWS
USED_KEYS = ("project", "s3folder", "models", "deploy.record_invokes")


@dataclass
class Ml2pDocument(Document):
    """An ml2p.yml translated to keel's settings (``value``), with what keel made of it.

    Attributes:
        ml2p: the file's own mapping, as ML2P reads it.
        model_type: the ``models:`` entry in use (None when none is, or several are and
            none was picked).
        model_types: every ``models:`` entry and its ``module.Class``.
        unused: dotted keys that configure AWS, accepted and unused here.
    """

    ml2p: dict[str, Any] = field(default_factory=dict)
    model_type: str | None = None
    model_types: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    def pick_hint(self) -> str:
        """What to do when several models are listed and none was picked ("" otherwise)."""
        if self.model_type is not None or len(self.model_types) < 2:
            return ""
        names = ", ".join(sorted(self.model_types))
        return (
            f"{self.where(('models',))}: models lists several ({names}): pick one with "
            f"`keel ml2p --model NAME …` or env {MODEL_ENV}"
        )


def is_ml2p_document(value: Any) -> bool:
    """Whether a config file's mapping is ML2P's (it has ML2P's required ``s3folder``)."""
    return isinstance(value, dict) and "s3folder" in value


def read_ml2p_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping of an ml2p.yml, as ML2P reads it (one ConfigError line when it is not)."""
    from keel.config.yamlfile import load_document

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"ML2P config file {file} not found")
    document = load_document(file, os.environ)
    _check(document)
    return dict(document.value)


def _check(document: Document) -> None:
    value = document.value
    where = document.where
    if not isinstance(value, dict):
        raise ConfigError(f"{document.path}: expected ML2P's mapping (project, s3folder, …)")
    for key in ("project", "s3folder"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise ConfigError(
                f"{where((key,))}: {key} is required in an ML2P project file and must be text"
            )
    models = value.get("models")
    if models is not None and not isinstance(models, dict):
        raise ConfigError(f'{where(("models",))}: models maps names to "module.Class"')
    for section in ("defaults", "train", "deploy", "dataset", "notebook"):
        if value.get(section) is not None and not isinstance(value[section], dict):
            raise ConfigError(f"{where((section,))}: {section} must be a mapping")


def model_classes(document: Document) -> dict[str, str]:
    """``models:`` as ``{name: "module.Class"}`` (the multi-model form's
    ``model-defaults.cls``)."""
    found: dict[str, str] = {}
    for name, entry in (document.value.get("models") or {}).items():
        cls = entry
        if isinstance(entry, dict):
            cls = (entry.get("model-defaults") or {}).get("cls")
        if not isinstance(cls, str) or "." not in cls.strip("."):
            raise ConfigError(
                f"{document.where(('models', name))}: models.{name}: expected the model "
                'class as "module.Class" (or {model-defaults: {cls: "module.Class"}})'
            )
        found[str(name)] = cls
    return found


def unused_keys(value: Mapping[str, Any]) -> list[str]:
    """The dotted keys keel does not use (AWS settings): sections' keys one level down."""
    unused = []
    for key, item in value.items():
        if key in ("project", "s3folder", "models"):
            continue
        if isinstance(item, dict) and item:
            unused += [f"{key}.{sub}" for sub in item if f"{key}.{sub}" not in USED_KEYS]
        else:
            unused.append(str(key))
    return unused


def translate(document: Document, env: Mapping[str, str] | None = None) -> Ml2pDocument:
    """keel's settings from an ml2p.yml; errors name the ml2p.yml line."""
    env = os.environ if env is None else env
    _check(document)
    value = document.value
    types = model_classes(document)
    wanted = env.get(MODEL_ENV) or None
    if wanted is not None and wanted not in types:
        known = ", ".join(sorted(types)) or "none"
        raise ConfigError(
            f"{document.where(('models',))}: no model {wanted!r} in models (from "
            f"--model/{MODEL_ENV}; models: {known})"
        )
    picked = wanted or (next(iter(types)) if len(types) == 1 else None)

    def keel_settings(source: Mapping[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "project": source.get("project"),
            "store": {"artifacts": source.get("s3folder")},
        }
        if picked is not None:
            module, _, cls = types[picked].rpartition(".")
            settings["model"] = {"name": picked, "module": module, "class": cls}
        deploy = source.get("deploy") or {}
        if isinstance(deploy, dict) and "record_invokes" in deploy:
            settings["api"] = {"record_invokes": deploy["record_invokes"]}
        return settings

    origins: dict[Loc, Origin] = {}
    moved: dict[Loc, Loc] = {
        ("project",): ("project",),
        ("store",): ("s3folder",),
        ("store", "artifacts"): ("s3folder",),
        ("api",): ("deploy",),
        ("api", "record_invokes"): ("deploy", "record_invokes"),
    }
    if picked is not None:
        for key in ("model", ("model", "name"), ("model", "module"), ("model", "class")):
            moved[key if isinstance(key, tuple) else (key,)] = ("models", picked)
    for target, source in moved.items():
        origin = document.origins.get(source)
        if origin is not None:
            origins[target] = origin
    snapshot = document.snapshot if isinstance(document.snapshot, dict) else value
    return Ml2pDocument(
        path=document.path,
        value=keel_settings(value),
        snapshot=keel_settings(snapshot),
        origins=origins,
        secrets=list(document.secrets),
        ml2p=dict(value),
        model_type=picked,
        model_types=types,
        unused=unused_keys(value),
    )
