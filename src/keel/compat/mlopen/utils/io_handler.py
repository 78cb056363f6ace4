"""mlopen's ``io_handler`` on keel: what a control file saves and loads.

``save_pipeline(models, args, name)`` keeps the objects ``train`` made as the model version
keel is training: ``models`` and ``args`` are lists of ``(object, "name")`` pairs, as mlopen
defined them (bare objects are accepted too). ``run_pipeline`` then receives the model object
itself (a dict by name when several were saved) and ``args`` by name. ``load_pipeline``
returns ``(model, args)`` as mlopen's did; ``save``/``load`` keep single objects by name.

Outside a keel training run there is nowhere to save to: ``save_pipeline`` raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from keel.errors import InvalidInput, KeelError, NotFound

__all__ = ["load", "load_pipeline", "save", "save_pipeline"]

#: what ``train`` saved while keel trains it
_saved: ContextVar[dict[str, Any] | None] = ContextVar("keel_mlopen_saved", default=None)
#: the saved objects of the pipeline keel is running: {"name", "model", "args"}
_loaded: ContextVar[dict[str, Any] | None] = ContextVar("keel_mlopen_loaded", default=None)


def save_pipeline(models: Any, args: Any = None, name: str | None = None) -> bool:
    """Store the trained objects of a pipeline as the model version being trained.

    Args:
        models: the trained models as ``(object, "name")`` pairs (or bare objects).
        args: other objects ``run_pipeline`` needs, as ``(object, "name")`` pairs (or a
            dict of name to object); ``run_pipeline`` gets them as ``args["name"]``.
        name: the control file's name (``os.path.basename(__file__)``; kept for information).

    Example:
        >>> io.save_pipeline([(clf, "logreg_model")], [(tfidf, "tfidf_vect")],
        ...                  os.path.basename(__file__))                  # doctest: +SKIP
    """
    target = _saved.get()
    if target is None:
        raise KeelError("save_pipeline() is only available while keel trains a pipeline")
    objects, names = _models(models)
    target["models"] = objects
    target["model_names"] = names
    target["args"] = named(args)
    target["name"] = _control_name(name)
    return True


def _control_name(name: str | None) -> str | None:
    if not name:
        return None
    return name[:-3] if name.endswith(".py") else name


def _models(models: Any) -> tuple[list[Any], list[str | None]]:
    """The model objects and their names (None for a bare object)."""
    if models is None:
        return [], []
    items = list(_flatten(models)) if isinstance(models, list | tuple) else [models]
    if _is_pair(models):  # one pair given alone: save_pipeline((clf, "clf"), …)
        items = [models]
    objects: list[Any] = []
    names: list[str | None] = []
    for item in items:
        if _is_pair(item):
            objects.append(item[0])
            names.append(item[1])
        else:
            objects.append(item)
            names.append(None)
    return objects, names


def _is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str)


def named(args: Any) -> dict[str, Any]:
    """``args`` (``(object, "name")`` pairs, nested lists of them, or a dict) by name."""
    if args is None or args == "":
        return {}
    if isinstance(args, dict):
        return dict(args)
    if _is_pair(args):
        return {args[1]: args[0]}
    out: dict[str, Any] = {}
    for item in _flatten(args):
        if not _is_pair(item):
            raise InvalidInput(
                "save_pipeline: args are (object, 'name') pairs, e.g. [(tfidf, 'tfidf_vect')]"
            )
        out[item[1]] = item[0]
    return out


def _flatten(items: Any) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def model_of(fitted: dict[str, Any]) -> Any:
    """The ``model`` argument of ``run_pipeline``: the one saved model, a dict by name when
    several named ones were saved (a list when they were bare), None when none was."""
    models = list(fitted.get("models") or [])
    if not models:
        return None
    if len(models) == 1:
        return models[0]
    names = list(fitted.get("model_names") or [])
    if len(names) == len(models) and all(names):
        return dict(zip(names, models, strict=True))
    return models


def save(arg_object: Any, name: str, save_to_db: bool = False, type: str | None = None) -> bool:
    """Keep one object by name with the pipeline being trained (``type="model"``: as a model,
    else as an arg)."""
    target = _saved.get()
    if target is None:
        raise KeelError("io_handler.save() is only available while keel trains a pipeline")
    name = name[:-4] if name.endswith(".pkl") else name
    if type == "model":
        target["models"].append(arg_object)
        target["model_names"].append(name)
    else:
        target["args"][name] = arg_object
    return True


def load(name: str, type: str | None = None) -> Any:
    """An object kept with ``save`` (or ``save_pipeline``) by the pipeline keel is running."""
    name = name[:-4] if name.endswith(".pkl") else name
    current = _loaded.get() or _saved.get()
    if current is None:
        raise KeelError("io_handler.load() is only available while keel runs a pipeline")
    if type == "model":
        names = current.get("model_names") or []
        for model_name, model in zip(names, current.get("models") or [], strict=False):
            if model_name == name:
                return model
        raise NotFound(f"io_handler.load: the pipeline saved no model {name!r}")
    args = current.get("args") or {}
    if name not in args:
        known = ", ".join(sorted(args)) or "none"
        raise NotFound(f"io_handler.load: the pipeline saved no arg {name!r} (saved: {known})")
    return args[name]


def load_pipeline(pipeline: Any = None) -> tuple[Any, dict[str, Any]]:
    """``(model, args)`` of a pipeline, as mlopen's ``load_pipeline`` returned them.

    Args:
        pipeline: the pipeline (its name, or an object with ``.name`` or ``.control``); None:
            the one keel is running. Another pipeline is loaded from the store keel uses
            (its latest trained version).
    """
    wanted = _pipeline_name(pipeline)
    current = _loaded.get()
    if current is not None and (wanted is None or wanted == current.get("name")):
        return current["model"], dict(current["args"])
    if wanted is None:
        raise KeelError("io_handler.load_pipeline() needs a pipeline name outside a keel run")
    from keel.lifecycle.loading import load_model

    with load_model(wanted) as loaded:
        fitted = loaded.fitted if isinstance(loaded.fitted, dict) else {}
    return model_of(fitted), dict(fitted.get("args") or {})


def _pipeline_name(pipeline: Any) -> str | None:
    if pipeline is None or isinstance(pipeline, str):
        return _control_name(pipeline)
    for attribute in ("control", "name"):
        value = getattr(pipeline, attribute, None)
        if isinstance(value, str) and value:
            return _control_name(value)
    return _control_name(str(pipeline))


@contextmanager
def capturing() -> Iterator[dict[str, Any]]:
    """While training: what ``save_pipeline``/``save`` keep goes into the yielded dict."""
    saved: dict[str, Any] = {"models": [], "model_names": [], "args": {}, "name": None}
    token = _saved.set(saved)
    try:
        yield saved
    finally:
        _saved.reset(token)


@contextmanager
def running(name: str | None, fitted: dict[str, Any]) -> Iterator[None]:
    """While ``run_pipeline`` runs: ``load_pipeline()`` and ``load()`` answer from ``fitted``."""
    current = {
        "name": name,
        "model": model_of(fitted),
        "models": list(fitted.get("models") or []),
        "model_names": list(fitted.get("model_names") or []),
        "args": dict(fitted.get("args") or {}),
    }
    token = _loaded.set(current)
    try:
        yield
    finally:
        _loaded.reset(token)
