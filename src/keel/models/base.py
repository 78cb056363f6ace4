"""keel's model contract: the class users write, and the context keel hands it.

A model is a class with ``train(ctx)`` returning the fitted model, ``evaluate(ctx, fitted)``
returning metrics, and ``predict(ctx, fitted, inputs)``; ``predict_batch``, ``setup``,
``teardown``, ``generate_dataset`` and ``record_invoke_id`` are optional, and so are the
``answer_*`` hooks through which an adapter gives the prediction API its system's wire
shapes. ``ctx`` (a :class:`ModelContext`) holds everything the code needs from keel: the
``model:`` config, the data sources and sinks of the phase, the previous fitted model, a
tracker for params, metrics and report items, and the working folders.
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from keel.data.base import DataSink, DataSource

PHASES = ("train", "test", "predict", "dataset")


class Tracker(Protocol):
    """Where a model's params, metrics and report items go (the current run, when tracked)."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def report(self, name: str, value: Any) -> None: ...


@dataclass
class MemoryTracker:
    """A tracker that keeps everything in memory: used when no run is being tracked."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    items: dict[str, Any] = field(default_factory=dict)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.metrics.update({k: float(v) for k, v in metrics.items()})

    def report(self, name: str, value: Any) -> None:
        from keel.models.report import summarize

        self.items[name] = summarize(value)


class PhaseData(dict[str, Any]):
    """The data sources (or sinks) of one phase, by name; a missing name says which exist."""

    def __init__(self, items: Mapping[str, Any], kind: str, phase: str) -> None:
        super().__init__(items)
        self.kind = kind
        self.phase = phase

    def __missing__(self, name: str) -> Any:
        known = ", ".join(sorted(self)) or "none"
        raise NotFound(
            f"no {self.kind} {name!r} for phase {self.phase!r} (available: {known}); "
            f"tag it with {self.phase!r} in keel.yml"
        )


@dataclass
class ModelContext:
    """What keel gives model code in every call.

    Attributes:
        phase: ``train``, ``test``, ``predict`` or ``dataset``.
        model_conf: the ``model:`` section as a dict (``name``, ``version``, ``module``,
            ``params`` and any extra keys).
        sources: the data sources tagged for this phase, by name.
        sinks: the data sinks tagged for this phase, by name.
        model_dir: files stored with the model version. Write to it in ``train``; when
            predicting it holds those files (read-only).
        work_dir: a scratch folder, removed after the call.
        dataset_dir: the files of the dataset given with ``keel train --dataset``, or the
            folder ``generate_dataset`` writes the new dataset into.
        previous: the latest fitted model of this name when training (for incremental
            training), else None.
        fitted: the fitted model when predicting (also passed to ``predict``).
        tracker: where ``log_params``, ``log_metrics`` and ``report`` go.
        project: the project everything is filed under.
        version: ``name@number`` of the model version being used, when there is one.
        run_id: the id of the run being tracked, if any.
        artifact_root: the artifact store's URL (or folder).
        record_invokes: whether the prediction API records each invocation.
    """

    phase: str
    model_conf: dict[str, Any]
    sources: Mapping[str, DataSource] = field(default_factory=dict)
    sinks: Mapping[str, DataSink] = field(default_factory=dict)
    model_dir: Path = field(default_factory=Path)
    work_dir: Path = field(default_factory=Path)
    dataset_dir: Path | None = None
    previous: Any = None
    fitted: Any = None
    tracker: Tracker = field(default_factory=MemoryTracker)
    project: str = "default"
    version: str | None = None
    run_id: str | None = None
    artifact_root: str = ""
    record_invokes: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """``model.params`` from keel.yml."""
        return dict(self.model_conf.get("params") or {})

    @property
    def name(self) -> str:
        return str(self.model_conf.get("name") or "model")

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"keel.model.{self.name}")

    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        self.tracker.log_params({**(params or {}), **more})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.tracker.log_metrics(metrics, step)

    def report(self, name: str, value: Any) -> None:
        """Add an item to the train report (DataFrames are summarised)."""
        self.tracker.report(name, value)


class Model(ABC):
    """Subclass this and implement ``train`` and ``predict`` (and usually ``evaluate``).

    Example:
        >>> from sklearn.linear_model import LogisticRegression     # doctest: +SKIP
        >>> class Iris(keel.Model):
        ...     def train(self, ctx):
        ...         df = ctx.sources["iris"].get_dataframe()
        ...         return LogisticRegression(**ctx.params).fit(df[FEATURES], df["species"])
        ...     def evaluate(self, ctx, fitted):
        ...         df = ctx.sources["iris_test"].get_dataframe()
        ...         return {"accuracy": fitted.score(df[FEATURES], df["species"])}
        ...     def predict(self, ctx, fitted, inputs):
        ...         return {"species": fitted.predict(pd.DataFrame([inputs])[FEATURES])[0]}

    The instance is stored with each model version (its class pickled by value), so keep
    learned state in what ``train`` returns, not on ``self``.
    """

    #: the style of code this wraps (adapters set their own)
    style = "keel"

    def setup(self, ctx: ModelContext) -> None:  # noqa: B027 - optional hook
        """Called once before the first prediction (``ctx.fitted`` is loaded)."""

    def teardown(self, ctx: ModelContext) -> None:  # noqa: B027 - optional hook
        """Called once after the last prediction."""

    @abstractmethod
    def train(self, ctx: ModelContext) -> Any:
        """Train on ``ctx.sources`` and return the fitted model (anything picklable)."""

    def evaluate(self, ctx: ModelContext, fitted: Any) -> dict[str, Any]:
        """Test ``fitted`` on ``ctx.sources`` (the ``test`` data); return metrics."""
        return {}

    @abstractmethod
    def predict(self, ctx: ModelContext, fitted: Any, inputs: Any) -> Any:
        """One prediction from JSON-like ``inputs``; return something JSON-like."""

    def predict_batch(self, ctx: ModelContext, fitted: Any, batch: Any) -> Any:
        """Predictions for many inputs: a DataFrame chunk or a list of inputs.

        Returns a list (one result per row) or a DataFrame. The default calls ``predict``
        once per row; override it to predict a whole batch at once.
        """
        rows = records(batch)
        return [self.predict(ctx, fitted, row) for row in rows]

    def generate_dataset(self, ctx: ModelContext) -> Any:
        """Write a dataset into ``ctx.dataset_dir`` (or return a DataFrame to store)."""
        raise InvalidInput(
            f"model {ctx.name} ({type(self).__name__}) has no dataset generator: "
            "define generate_dataset(self, ctx)"
        )

    def record_invoke_id(self, ctx: ModelContext, inputs: Any, result: Any) -> dict[str, str]:
        """The keys that name an invocation record; joined as ``k-v--k-v``."""
        return default_invoke_id()

    # --- how the prediction API answers (adapters give their system's wire shapes) ---------
    # Each returns None for keel's own answer; keel's serving calls them on any model.

    def answer_metadata(self, ctx: ModelContext) -> dict[str, Any] | None:
        """The ``metadata`` of a ``/invocations`` answer, or None for keel's."""
        return None

    def answer_batch(self, ctx: ModelContext, results: list[Any], metadata: Any) -> Any:
        """The body answering a batch ``/invocations`` (``metadata`` as for one call), or
        None for keel's ``{"predictions": results}``."""
        return None

    def answer_ping(self, ctx: ModelContext) -> dict[str, Any] | None:
        """The JSON body of a healthy ``/ping``, or None for keel's empty 200."""
        return None

    def answer_error(self, ctx: ModelContext, exc: BaseException) -> tuple[int, Any] | None:
        """``(status, JSON body)`` answering an exception from model code, or None for
        keel's (404/422 for its refusals, else 500)."""
        return None


def default_invoke_id() -> dict[str, str]:
    """``{"ts": <ISO 8601 UTC>, "uuid": <uuid4>}``: the default invocation record id."""
    return {"ts": datetime.now(UTC).isoformat(), "uuid": str(uuid.uuid4())}


def invoke_record_name(keys: Mapping[str, Any]) -> str:
    """``ts-<ts>--uuid-<uuid>``: key-value pairs joined with ``-``, pairs with ``--``."""
    return "--".join(f"{k}-{v}" for k, v in keys.items())


def records(batch: Any) -> list[Any]:
    """The rows of a batch: a DataFrame's records, or the items of a list."""
    import pandas as pd

    if isinstance(batch, pd.DataFrame):
        from keel.data.helpers import to_plain_python

        return [to_plain_python(r) for r in batch.to_dict(orient="records")]
    if isinstance(batch, list | tuple):
        return list(batch)
    raise InvalidInput(f"a batch is a DataFrame or a list of inputs, not {type(batch).__name__}")


def batch_frame(batch: Any, results: Any) -> pd.DataFrame:
    """Batch predictions as a DataFrame: returned as is, records, or a ``prediction`` column
    beside the inputs."""
    import pandas as pd

    if isinstance(results, pd.DataFrame):
        return results
    if isinstance(results, pd.Series):
        results = results.tolist()
    results = list(results)
    if len(results) != len(batch):
        raise InvalidInput(f"predict_batch returned {len(results)} results for {len(batch)} inputs")
    frame = batch if isinstance(batch, pd.DataFrame) else pd.DataFrame(records(batch))
    frame = frame.reset_index(drop=True)
    if results and all(isinstance(r, Mapping) for r in results):
        # its columns beside the inputs (and over them); a nested answer such as
        # {"probabilities": {"setosa": 0.9}} becomes a column probabilities.setosa
        predicted = pd.json_normalize(results)
        return pd.concat(
            [frame.drop(columns=predicted.columns, errors="ignore"), predicted], axis=1
        )
    return frame.assign(prediction=results)
