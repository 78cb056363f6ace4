"""keel's model contract over an mlopen control file (``train`` + ``run_pipeline``).

``train(inpt, params)`` gets the input as a file object (:class:`~.files.PipelineFile`, like
the Django ``File`` mlopen gave) and ``params`` as a dict (always, as mlopen did); what it
keeps with ``io.save_pipeline`` becomes the version's fitted state. ``run_pipeline(input,
model, args, params)`` gets the same kinds of objects and returns ``preds``. Parameters that
``get_params`` declares as ``file``/``upload`` reach the pipeline as file objects too. keel
adds an optional ``test(inpt, model, args, params)`` returning metrics (after training and
for ``keel retest``).

:func:`adapt` is the entry :mod:`keel.models.styles` imports by name for a module defining
``train`` and ``run_pipeline``.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any

from keel.compat.mlopen.files import PipelineFile
from keel.compat.mlopen.preds import plain_preds
from keel.compat.mlopen.utils import io_handler
from keel.compat.mlopen.utils.params_handler import file_params
from keel.errors import InvalidInput
from keel.models.adapter import Adapter
from keel.models.base import Model, ModelContext


def pipeline_input(ctx: ModelContext) -> Any:
    """What ``train`` gets as ``inpt``: the one source's local file as a file object, else
    its data (a remote source)."""
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
            return PipelineFile(path)
    return source.get_dataframe() if source.gives_frames else source.get_raw()


@contextmanager
def object_strings() -> Iterator[None]:
    """Text columns read by pandas as NumPy object arrays while pipeline code runs, as with the
    pandas mlopen was written for: pandas 3 reads them as Arrow strings, whose ``.values``
    scikit-learn cannot index (mlopen's knn: ``train_test_split(X, y)`` on
    ``dataset.iloc[:, 4].values``). A no-op when pandas is not imported or has no such option
    (pandas 4 will not)."""
    pd = sys.modules.get("pandas")
    if pd is None:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option's deprecation warning (pandas ≥ 3)
        try:
            context = pd.option_context("future.infer_string", False)
            context.__enter__()
        except (KeyError, AttributeError, ValueError, pd.errors.OptionError):
            context = None
    try:
        yield
    finally:
        if context is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                context.__exit__(None, None, None)


def with_files(params: dict[str, Any], files: set[str]) -> dict[str, Any]:
    """``params`` with the values of the file parameters ``files`` as file objects (a value
    that names no local file stays as it is)."""
    out = dict(params)
    for name in files & set(out):
        value = out[name]
        if isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isfile(value)):
            out[name] = PipelineFile(value)
    return out


def close_files(*values: Any) -> None:
    """Close the file objects among ``values`` (and in dicts among them)."""
    for value in values:
        items = value.values() if isinstance(value, dict) else [value]
        for item in items:
            if isinstance(item, PipelineFile):
                item.close()


class MlopenModel(Adapter):
    """keel's contract over an mlopen control file (a module)."""

    style = "mlopen"

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    @property
    def control_name(self) -> str:
        return self.module.__name__.rpartition(".")[2]

    def _params(self, ctx: ModelContext, run: bool, extra: dict[str, Any] | None = None) -> Any:
        params = with_files(dict(ctx.params or {}), self.file_params(run))
        return {**params, **(extra or {})}

    def file_params(self, run: bool) -> set[str]:
        """The parameters ``get_params(run)`` declares as files."""
        try:
            return file_params(self.get_params(run))
        except Exception:  # a get_params that fails here fails where the form is built
            return set()

    def train(self, ctx: ModelContext) -> dict[str, Any]:
        inpt = pipeline_input(ctx)
        params = self._params(ctx, run=False)
        try:
            with io_handler.capturing() as saved, object_strings():
                self.module.train(inpt, params)
        finally:
            close_files(inpt, params)
        return {
            "models": saved["models"],
            "model_names": saved["model_names"],
            "args": saved["args"],
        }

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        test = getattr(self.module, "test", None)
        if not callable(test):
            return {}
        inpt = pipeline_input(ctx)
        params = self._params(ctx, run=False)
        try:
            with io_handler.running(self.control_name, fitted), object_strings():
                metrics = test(inpt, io_handler.model_of(fitted), fitted["args"], params)
        finally:
            close_files(inpt, params)
        return dict(metrics or {})

    def predict(self, ctx: ModelContext, fitted: Any, inputs: Any) -> dict[str, Any]:
        """``inputs`` is the pipeline input, or ``{"input": …, "params": {…}}``. A path object
        (from Python) becomes a file object; JSON stays as it is."""
        extra: dict[str, Any] = {}
        if isinstance(inputs, dict) and "input" in inputs and set(inputs) <= {"input", "params"}:
            extra = dict(inputs.get("params") or {})
            inputs = inputs["input"]
        if isinstance(inputs, os.PathLike) and not isinstance(inputs, PipelineFile):
            inputs = PipelineFile(inputs)
        params = self._params(ctx, run=True, extra=extra)
        return call_run_pipeline(self.module, fitted, inputs, params, self.control_name)

    def get_params(self, run: bool = False) -> Any:
        """The form parameters the control file declares (None if it declares none)."""
        get_params = getattr(self.module, "get_params", None)
        return get_params(run) if callable(get_params) else None


def call_run_pipeline(
    module: ModuleType,
    fitted: dict[str, Any] | None,
    inputs: Any,
    params: dict[str, Any],
    name: str | None = None,
) -> dict[str, Any]:
    """mlopen's call ``run_pipeline(input, model, args, params)`` with what ``fitted`` saved
    (nothing when the pipeline was never trained, like mlopen's knn); its ``preds`` plain."""
    fitted = fitted or {"models": [], "args": {}}
    with ExitStack() as stack:
        stack.callback(close_files, inputs, params)
        stack.enter_context(io_handler.running(name, fitted))
        stack.enter_context(object_strings())
        preds = module.run_pipeline(
            inputs, io_handler.model_of(fitted), dict(fitted.get("args") or {}), params
        )
    return plain_preds(preds)


def adapt(module: ModuleType, classes: list[type]) -> Model:
    """The adapter :mod:`keel.models.styles` calls for a module with ``train`` and
    ``run_pipeline`` (``classes`` is empty: mlopen's pipelines are functions)."""
    return MlopenModel(module)
