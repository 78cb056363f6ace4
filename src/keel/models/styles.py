"""Finding the model in the user's module: keel's contract or one of the three seed styles.

``model.module`` names a module (imported with the config's folder on ``sys.path``);
``model.class`` may name the class. Otherwise the module is searched for, in order: a
:class:`keel.models.Model` subclass, a Launchpad ``ModelMakerInterface`` +
``ModelInterface`` pair, an ML2P ``Model``, and mlopen's ``train`` + ``run_pipeline``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from keel.errors import ConfigError
from keel.models.base import Model


def import_model_module(name: str, base_dir: Path, fresh: bool = False) -> ModuleType:
    """Import ``name`` with ``base_dir`` first on ``sys.path``.

    A module of that name imported from elsewhere (another project in the same process)
    is replaced, so each config gets its own code; ``fresh`` re-executes it (live code).
    """
    folder = str(base_dir.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    importlib.invalidate_caches()
    loaded = sys.modules.get(name)
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
        local = where is not None and Path(where).resolve().is_relative_to(folder)
        if fresh or not local:
            top = name.partition(".")[0]
            for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
                del sys.modules[key]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(
                f"model.module: no module {name!r} in {base_dir} or on the Python path"
            ) from None
        raise


def _defined_here(module: ModuleType, base: type) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _one(found: list[type], what: str, module: ModuleType) -> type | None:
    if len(found) > 1:
        names = ", ".join(sorted(c.__name__ for c in found))
        raise ConfigError(
            f"model.module {module.__name__}: several {what} classes ({names}); "
            "name one with model.class"
        )
    return found[0] if found else None


def find_model(module: ModuleType, class_name: str | None = None) -> Model:
    """The model in ``module`` wrapped in keel's contract."""
    from keel.models import launchpad, ml2p, mlopen

    if class_name:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise ConfigError(f"model.class: {module.__name__} has no {class_name!r}")
        return _wrap_class(obj, module)
    keel_class = _one(_defined_here(module, Model), "keel Model", module)
    if keel_class is not None:
        return keel_class()
    maker = _one(_defined_here(module, launchpad.ModelMakerInterface), "ModelMaker", module)
    interface = _one(_defined_here(module, launchpad.ModelInterface), "ModelInterface", module)
    if maker is not None or interface is not None:
        if maker is None or interface is None:
            missing = "ModelMakerInterface" if maker is None else "ModelInterface"
            raise ConfigError(
                f"model.module {module.__name__}: Launchpad-style code needs both a "
                f"ModelMakerInterface and a ModelInterface subclass; no {missing} found"
            )
        return launchpad.LaunchpadModel(maker, interface)
    ml2p_class = _one(_defined_here(module, ml2p.Model), "ML2P Model", module)
    if ml2p_class is not None:
        return ml2p.Ml2pModel(ml2p_class)
    if callable(getattr(module, "train", None)) and callable(getattr(module, "run_pipeline", None)):
        return mlopen.MlopenModel(module)
    raise ConfigError(
        f"model.module {module.__name__} ({getattr(module, '__file__', '?')}): no model found; "
        "define a keel.models.Model subclass, a Launchpad ModelMakerInterface and "
        "ModelInterface, an ML2P Model, or mlopen's train() and run_pipeline()"
    )


def _wrap_class(obj: Any, module: ModuleType) -> Model:
    from keel.models import ml2p

    if inspect.isclass(obj) and issubclass(obj, Model):
        return obj()
    if inspect.isclass(obj) and issubclass(obj, ml2p.Model):
        return ml2p.Ml2pModel(obj)
    raise ConfigError(
        f"model.class: {module.__name__}.{getattr(obj, '__name__', obj)} is not a keel "
        "Model or an ML2P Model"
    )


def load_model_code(model_conf: dict[str, Any], base_dir: Path, fresh: bool = False) -> Model:
    """Import ``model.module`` and return its model in keel's contract."""
    name = model_conf.get("module")
    if not name:
        raise ConfigError(
            "model.module is not set in keel.yml: name the Python module with your model "
            "(e.g. model: {name: iris, module: iris_model})"
        )
    module = import_model_module(str(name), base_dir, fresh=fresh)
    return find_model(module, model_conf.get("class"))
