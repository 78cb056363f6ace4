"""Finding the model in the user's module: keel's contract or one of the three seed styles.

``model.module`` names a module (imported with the config's folder on ``sys.path``);
``model.class`` may name the class. Otherwise the module is searched for, in order: a
:class:`keel.models.Model` subclass, classes of a :mod:`keel.compat` style (a Launchpad
``ModelMakerInterface`` + ``ModelInterface`` pair, an ML2P ``Model``: their bases name the
adapter to use), and mlopen's ``train`` + ``run_pipeline``.
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

#: the adapter of a module defining mlopen's ``train`` and ``run_pipeline`` (imported lazily:
#: keel's core never imports :mod:`keel.compat`)
MLOPEN_ADAPTER = "keel.compat.mlopen.adapter:adapt"


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
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ConfigError(
                f"model.module: no module {name!r} in {base_dir.resolve()} or on the Python path"
            ) from None
        raise ConfigError(
            f"model.module {name} ({_failing_line(exc, folder)}): no module named "
            f"{exc.name!r}: install it in this environment (pip install …) or fix the import"
        ) from exc
    except SyntaxError as exc:
        raise ConfigError(
            f"model.module {name} ({exc.filename} line {exc.lineno}): syntax error: {exc.msg}"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"model.module {name} ({_failing_line(exc, folder)}): importing it raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _failing_line(exc: BaseException, folder: str) -> str:
    """``file line N`` of the deepest frame of the user's project in ``exc``'s traceback."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if Path(f.filename).resolve().is_relative_to(folder)]
    frame = (own or frames or [None])[-1]
    return f"{frame.filename} line {frame.lineno}" if frame is not None else "?"


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


def _style_groups(module: ModuleType) -> dict[str, list[type]]:
    """Classes defined in ``module`` whose base names an adapter, grouped by that adapter."""
    groups: dict[str, list[type]] = {}
    for obj in vars(module).values():
        if not inspect.isclass(obj) or obj.__module__ != module.__name__:
            continue
        adapter = getattr(obj, "__keel_adapter__", None)
        if isinstance(adapter, str) and not inspect.isabstract(obj):
            groups.setdefault(adapter, []).append(obj)
    return groups


def _adapt(adapter: str, module: ModuleType, classes: list[type]) -> Model:
    """Import ``package.module:function`` (a compat adapter) and wrap ``classes`` with it."""
    module_name, _, function = adapter.partition(":")
    factory = getattr(importlib.import_module(module_name), function)
    return factory(module, classes)  # type: ignore[no-any-return]


def find_model(module: ModuleType, class_name: str | None = None) -> Model:
    """The model in ``module`` wrapped in keel's contract.

    A keel :class:`Model` subclass wins; otherwise classes whose base (from
    :mod:`keel.compat`) names an adapter in ``__keel_adapter__`` are handed to that adapter;
    otherwise mlopen's ``train`` + ``run_pipeline`` functions.
    """
    if class_name:
        obj = getattr(module, class_name, None)
        if obj is None:
            raise ConfigError(f"model.class: {module.__name__} has no {class_name!r}")
        return _wrap_class(obj, module)
    keel_class = _one(_defined_here(module, Model), "keel Model", module)
    if keel_class is not None:
        return keel_class()
    groups = _style_groups(module)
    if len(groups) > 1:
        names = ", ".join(sorted(c.__name__ for found in groups.values() for c in found))
        raise ConfigError(
            f"model.module {module.__name__}: classes of several styles ({names}); "
            "name the one to use with model.class"
        )
    if groups:
        [(adapter, classes)] = groups.items()
        return _adapt(adapter, module, classes)
    if callable(getattr(module, "train", None)) and callable(getattr(module, "run_pipeline", None)):
        return _adapt(MLOPEN_ADAPTER, module, [])
    raise ConfigError(
        f"model.module {module.__name__} ({getattr(module, '__file__', '?')}): no model found; "
        "define a keel.models.Model subclass, a Launchpad ModelMakerInterface and "
        "ModelInterface, an ML2P Model, or mlopen's train() and run_pipeline()"
    )


def _wrap_class(obj: Any, module: ModuleType) -> Model:
    if inspect.isclass(obj) and issubclass(obj, Model):
        return obj()
    adapter = getattr(obj, "__keel_adapter__", None) if inspect.isclass(obj) else None
    if isinstance(adapter, str):
        return _adapt(adapter, module, [obj])
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
