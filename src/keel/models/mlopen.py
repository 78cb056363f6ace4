"""mlopen-style pipelines on keel: a control file with ``train`` and ``run_pipeline``.

Change ``from mlopenapp.utils import io_handler as io`` to
``from keel.models.mlopen import io_handler as io``; nothing else. ``train(inpt,
params=None)`` gets the training input (the path of the ``train`` file source, or its
DataFrame) and stores what it made with ``io.save_pipeline(models, args, name)``;
``run_pipeline(input, model, args, params=None)`` returns the ``preds`` dict (``data``,
``columns``, ``graphs``, ``text``). An optional ``get_params(run)`` declares form
parameters. keel adds an optional ``test(inpt, model, args, params=None)`` returning
metrics, used after training and by ``keel retest``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from keel.errors import InvalidInput, KeelError
from keel.models.adapter import Adapter
from keel.models.base import ModelContext

__all__ = ["io_handler", "save_pipeline"]

_saved: ContextVar[dict[str, Any] | None] = ContextVar("keel_mlopen_saved", default=None)


def save_pipeline(models: Any, args: Any = None, name: str | None = None) -> None:
    """Store the trained objects of a pipeline as the model version being trained.

    Args:
        models: the trained model objects (a list, usually of one).
        args: other objects ``run_pipeline`` needs, as ``(object, "name")`` pairs (or a
            dict of name to object); ``run_pipeline`` gets them as ``args["name"]``.
        name: the control file's name (kept for information).
    """
    target = _saved.get()
    if target is None:
        raise KeelError("save_pipeline() is only available while keel trains a pipeline")
    target["models"] = list(models) if isinstance(models, list | tuple) else [models]
    target["args"] = _named(args)
    target["name"] = name


def _named(args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if isinstance(args, dict):
        return dict(args)
    named: dict[str, Any] = {}
    for item in _flatten(args):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str)):
            raise InvalidInput(
                "save_pipeline: args are (object, 'name') pairs, e.g. [(tfidf, 'tfidf_vect')]"
            )
        named[item[1]] = item[0]
    return named


def _flatten(args: Any) -> Iterator[Any]:
    for item in args:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


class _IoHandler:
    """Stands in for ``mlopenapp.utils.io_handler``."""

    save_pipeline = staticmethod(save_pipeline)


io_handler = _IoHandler()


@contextmanager
def _capturing() -> Iterator[dict[str, Any]]:
    saved: dict[str, Any] = {"models": [], "args": {}, "name": None}
    token = _saved.set(saved)
    try:
        yield saved
    finally:
        _saved.reset(token)


def pipeline_input(ctx: ModelContext) -> Any:
    """What ``train`` gets as ``inpt``: the local path of the one source, else its data."""
    if not ctx.sources:
        return str(ctx.dataset_dir) if ctx.dataset_dir is not None else None
    if len(ctx.sources) > 1:
        names = ", ".join(sorted(ctx.sources))
        raise InvalidInput(
            f"an mlopen pipeline takes one input; phase {ctx.phase!r} has several sources "
            f"({names}): tag only one with {ctx.phase!r}"
        )
    source = next(iter(ctx.sources.values()))
    path_for = getattr(source, "path_for", None)
    if path_for is not None:
        path = path_for(None)
        if "://" not in path:
            return path
    return source.get_dataframe() if source.gives_frames else source.get_raw()


def plain_preds(preds: Any) -> dict[str, Any]:
    """``preds`` as JSON: rows as lists, plotly figures as their JSON, the rest as given."""
    from keel.data.helpers import to_plain_python

    if not isinstance(preds, dict):
        raise InvalidInput(
            f"run_pipeline must return the preds dict (data, columns, graphs, text), "
            f"not {type(preds).__name__}"
        )
    unknown = set(preds) - {"data", "columns", "graphs", "text"}
    if unknown:
        raise InvalidInput(
            f"preds has unknown keys {', '.join(sorted(unknown))}; "
            "known: data, columns, graphs, text"
        )
    # mlopen's own pipelines set unused keys to None (knn: ``preds["graphs"] = None``).
    preds = {key: value for key, value in preds.items() if value is not None}
    out: dict[str, Any] = {}
    if "data" in preds:
        out["data"] = [to_plain_python(list(row)) for row in preds["data"]]
    if "columns" in preds:
        out["columns"] = [str(c) for c in preds["columns"]]
    if "graphs" in preds:
        out["graphs"] = [_graph(g) for g in _as_list(preds["graphs"])]
    if "text" in preds:
        text = preds["text"]
        out["text"] = text if isinstance(text, str) else to_plain_python(text)
    return out


def _as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else [value]


def _graph(graph: Any) -> Any:
    if isinstance(graph, str | dict):
        return graph  # an HTML <div> from plotly.offline.plot, or a figure dict
    to_json = getattr(graph, "to_json", None)
    if callable(to_json):  # a plotly Figure
        return json.loads(to_json())
    raise InvalidInput(f"preds['graphs'] holds a {type(graph).__name__}, not a plotly figure")


class MlopenModel(Adapter):
    """keel's contract over an mlopen control file (a module)."""

    style = "mlopen"

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def train(self, ctx: ModelContext) -> dict[str, Any]:
        with _capturing() as saved:
            self.module.train(pipeline_input(ctx), ctx.params or None)
        return {"models": saved["models"], "args": saved["args"]}

    @staticmethod
    def _model(fitted: dict[str, Any]) -> Any:
        models = fitted.get("models") or []
        return models[0] if len(models) == 1 else (models or None)

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        test = getattr(self.module, "test", None)
        if not callable(test):
            return {}
        metrics = test(pipeline_input(ctx), self._model(fitted), fitted["args"], ctx.params or None)
        return dict(metrics or {})

    def predict(self, ctx: ModelContext, fitted: Any, inputs: Any) -> dict[str, Any]:
        """``inputs`` is the pipeline input, or ``{"input": …, "params": {…}}``."""
        params = ctx.params or None
        if isinstance(inputs, dict) and "input" in inputs and set(inputs) <= {"input", "params"}:
            params = {**(params or {}), **(inputs.get("params") or {})} or None
            inputs = inputs["input"]
        preds = self.module.run_pipeline(inputs, self._model(fitted), fitted["args"], params)
        return plain_preds(preds)

    def get_params(self, run: bool = False) -> Any:
        """The form parameters the control file declares (None if it declares none)."""
        get_params = getattr(self.module, "get_params", None)
        return get_params(run) if callable(get_params) else None
