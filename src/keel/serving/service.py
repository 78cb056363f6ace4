"""One served model version: loaded once, predicting, describing itself, recording calls.

:class:`ModelService` is what the HTTP app calls; it holds the :class:`LoadedModel`, the
``api:`` spec, the invocation recorder and the micro-batcher, and knows nothing of HTTP.
:func:`open_service` builds one from keel.yml and a model reference.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config import Config
from keel.entities import InvocationRecord
from keel.errors import ConfigError, KeelError
from keel.models.base import Model, default_invoke_id, invoke_record_name
from keel.serving.spec import ApiSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from keel.lifecycle.loading import LoadedModel
    from keel.serving.batching import MicroBatcher
    from keel.serving.recorder import InvocationRecorder
    from keel.tracking.client import Client

log = logging.getLogger("keel.serving")


@dataclass
class ServiceStats:
    """Counters the app's /metrics reads."""

    batches: int = 0
    batched_calls: int = 0


class ModelService:
    """A loaded model version behind the prediction API."""

    def __init__(
        self,
        loaded: LoadedModel,
        spec: ApiSpec,
        client: Client | None = None,
        recorder: InvocationRecorder | None = None,
    ) -> None:
        self.loaded = loaded
        self.spec = spec
        self.client = client
        self.recorder = recorder
        self.batcher: MicroBatcher | None = None
        self.ready = False
        self.closed = False
        self.stats = ServiceStats()
        self.on_batch: Callable[[int], None] | None = None  # observes each batch's size
        from keel.serving.runner import ModelRunner

        self.runner = ModelRunner(spec.model_threads, spec.timeout_s, spec.max_hung_calls)
        mv = loaded.version
        self.model = mv.model if mv is not None else loaded.manifest.model
        self.version = mv.version if mv is not None else 0
        self.label = mv.label if mv is not None else None
        self.api_name = spec.name or self.model
        self.base_path = f"/{self.api_name}/v{spec.url_version or major_of(self.label)}"
        from keel import __version__

        self.keel_version = __version__
        # the model's own answer shapes (an adapter's system's wire format), if any
        self._answer_metadata = _hook(loaded.model, "answer_metadata")
        self._answer_batch = _hook(loaded.model, "answer_batch")
        self._answer_ping = _hook(loaded.model, "answer_ping")
        self._answer_error = _hook(loaded.model, "answer_error")
        if spec.batching.enabled and not implements_batch(loaded.model):
            raise ConfigError(
                f"api.batching is on, but model {self.model} ({type(loaded.model).__name__}) "
                "does not implement predict_batch: implement it or set batching: false"
            )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the model's ``setup`` and start the recorder (before the first request)."""
        if self.closed:  # its recorder and model threads are gone: calls would only hang
            raise RuntimeError(
                f"the service of {self.model} version {self.version} was closed (its app's "
                "lifespan ended): open a new one with open_service() to serve it again"
            )
        self.loaded.setup()
        if self.spec.preload_datasources:  # ML Launchpad's api.preload_datasources
            for source in self.loaded.ctx.sources.values():
                source.get_dataframe()
        if self.recorder is not None:
            self.recorder.start()
        self.ready = True

    async def start_batching(self) -> None:
        """Start the micro-batcher on the running event loop (when the spec asks for it)."""
        if self.spec.batching.enabled and self.batcher is None:
            from keel.serving.batching import MicroBatcher

            self.batcher = MicroBatcher(
                self.predict_many,
                run=self.run_model,
                max_batch_size=self.spec.batching.max_batch_size,
                max_wait_ms=self.spec.batching.max_wait_ms,
                on_batch=self._count_batch,
                concurrency=self.runner.concurrency,
            )
            self.batcher.start()

    async def stop_batching(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
            self.batcher = None

    def close(self) -> None:
        """Flush the recorder, then the model's ``teardown`` (idempotent)."""
        self.ready = False
        self.closed = True
        try:
            if self.recorder is not None:
                self.recorder.close()
        finally:
            self.runner.close()  # never waits for a hung call: it must not block the exit
            self.loaded.close()

    def _count_batch(self, size: int) -> None:
        self.stats.batches += 1
        self.stats.batched_calls += size
        if self.on_batch is not None:
            self.on_batch(size)

    # --- predicting -----------------------------------------------------------------------

    async def run_model(self, func: Callable[..., Any], *args: Any) -> Any:
        """Call model code in a worker thread within ``api.timeout_s`` (see
        :mod:`keel.serving.runner`); raises :class:`~keel.serving.runner.ModelUnavailable`
        when it times out or too many calls hang."""
        return await self.runner.run(func, *args)

    def predict_one(self, inputs: Any) -> Any:
        """One prediction as plain JSON-able Python (runs model code: call off the loop)."""
        return self.loaded.predict(inputs)

    def predict_many(self, batch: list[Any]) -> list[Any]:
        """One result per input, from the model's ``predict_batch``."""
        from keel.data.helpers import to_plain_python

        results = to_plain_python(self.loaded.predict_batch(batch))
        if not isinstance(results, list):
            results = [results] if len(batch) == 1 else results
        return results  # type: ignore[no-any-return]

    def call_metadata(self) -> dict[str, Any]:
        """The ``metadata`` of one ``/invocations`` answer."""
        meta: dict[str, Any] = {
            "model": self.model,
            "model_version": self.version,
            "model_label": self.label,
            "keel_version": self.keel_version,
            "timestamp": time.time(),
        }
        if self._answer_metadata is not None:
            own = self._answer_metadata(self.loaded.ctx)
            if own is not None:  # e.g. an ML2P predictor's metadata(), as it is
                return own  # type: ignore[no-any-return]
        return meta

    def batch_answer(self, results: list[Any]) -> Any:
        """The body answering a batch ``/invocations``: the model's shape, else
        ``{"predictions": results}``."""
        if self._answer_batch is not None:
            own = self._answer_batch(self.loaded.ctx, results, self.call_metadata())
            if own is not None:
                return own
        return {"predictions": results}

    def ping_answer(self) -> Any:
        """The JSON body of a healthy ``/ping`` when the model gives one, else None."""
        return self._answer_ping(self.loaded.ctx) if self._answer_ping is not None else None

    def error_answer(self, exc: BaseException) -> tuple[int, Any] | None:
        """``(status, body)`` for an exception from model code, when the model maps it."""
        if self._answer_error is None:
            return None
        return self._answer_error(self.loaded.ctx, exc)  # type: ignore[no-any-return]

    def metadata(self) -> dict[str, Any]:
        """What ``/metadata`` answers: the version served and how it was made."""
        mv = self.loaded.version
        entity = mv.entity if mv is not None else None
        return {
            "model": self.model,
            "version": self.version,
            "label": self.label,
            "aliases": list(entity.aliases) if entity else [],
            "content_hash": entity.content_hash if entity else None,
            "trained_at": _iso(entity.created_at) if entity else None,
            "run_id": entity.run_id if entity else None,
            "metrics": dict(entity.metrics) if entity else {},
            "style": self.loaded.style,
            "api": {"name": self.api_name, "base_path": self.base_path},
            "batching": self.spec.batching.enabled,
            "record_invokes": self.recorder is not None,
            "keel_version": self.keel_version,
        }

    # --- recording ------------------------------------------------------------------------

    def request_id(self, inputs: Any, result: Any) -> str:
        """``ts-<ISO 8601 UTC>--uuid-<uuid4>``, or the model's own ``record_invoke_id`` keys."""
        if self.recorder is not None and _overrides(self.loaded.model, "record_invoke_id"):
            keys = self.loaded.model.record_invoke_id(self.loaded.ctx, inputs, result)
            return invoke_record_name(keys)
        return invoke_record_name(default_invoke_id())

    def record(
        self,
        request_id: str,
        resource: str,
        inputs: Any,
        result: Any,
        started: float,
        status: str = "ok",
    ) -> InvocationRecord | None:
        """The record of one call, or None when recording is off."""
        if self.recorder is None:
            return None
        return InvocationRecord(
            request_id=request_id,
            model=self.model,
            version=self.version,
            timestamp=int(time.time() * 1000),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            status=status,
            resource=resource,
            input=inputs,
            result=result,
        )


def major_of(label: str | None) -> str:
    """``1`` for ``1.2.0`` (``v1``); ``0`` for a version without a label."""
    if not label:
        return "0"
    head = label.lstrip("vV").split(".", 1)[0]
    return head if head.isdigit() else "0"


def implements_batch(model: Model) -> bool:
    """Whether the model (or the code an adapter wraps) predicts batches itself."""
    if hasattr(model, "model") and type(model).__name__ == "Ml2pModel":
        return True  # ML2P predictors always have batch_result
    return _overrides(model, "predict_batch")


def _overrides(model: Model, name: str) -> bool:
    return getattr(type(model), name, None) is not getattr(Model, name, None)


def _hook(model: Model, name: str) -> Callable[..., Any] | None:
    """The model's ``answer_*`` hook when it has its own (versions stored by older keels
    may lack the attribute)."""
    if not _overrides(model, name):
        return None
    hook = getattr(model, name, None)
    return hook if callable(hook) else None


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _live_profiler(config: Config, client: Client, version: Any) -> Any:
    """The live profiler of a recording server (None when ``monitoring.enabled`` is off);
    columns take the kinds of the version's reference profile, when it has one."""
    from keel.lifecycle.monitoring import settings_of
    from keel.monitoring.live import LiveProfiler
    from keel.monitoring.storage import load_reference

    settings = settings_of(config)
    if not settings.section.enabled:
        return None
    try:
        kinds = load_reference(client, version).kinds()
    except KeelError:
        kinds = None  # no reference yet: kinds are inferred from the records
    return LiveProfiler(
        client,
        version,
        window_s=settings.window_s,
        flush_s=settings.section.flush_s,
        kinds=kinds,
        settings=settings.profile,
    )


def api_spec(config: Config) -> ApiSpec:
    """The config's ``api:`` section, checked (errors name the file and line)."""
    from keel.config import validate_section
    from keel.serving.spec import resolve_spec

    raw = config.raw.get("api") or {}
    return resolve_spec(validate_section(ApiSpec, raw, ("api",), config.document), config)


def open_service(
    ref: str | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    record_dir: Path | None = None,
    timeout_s: float | None = None,
) -> ModelService:
    """Load ``ref`` (default: the config's model and label) with the config's ``api:``.

    ``timeout_s`` overrides ``api.timeout_s`` (``keel serve --timeout``; 0: no limit).
    """
    from keel.lifecycle.loading import load_version
    from keel.lifecycle.project import Project

    project = Project.open(config, client)
    spec = api_spec(project.config)
    if timeout_s is not None:
        spec = spec.model_copy(update={"timeout_s": timeout_s or None})
    ref = project.resolve_ref(ref)
    client = client or project.client
    same_model = (
        ref.partition("@")[0] == project.config.settings.model.name
        if (project.config.settings.model)
        else False
    )
    loaded = load_version(project if same_model else None, client, ref, phase="predict")
    recorder = None
    if spec.record_invokes:
        from keel.serving.recorder import InvocationRecorder

        mv = loaded.version
        assert mv is not None
        recorder = InvocationRecorder(
            client,
            (mv.model, mv.version),
            queue_size=spec.record_queue_size,
            wait_s=spec.record_wait_s,
            batch_size=spec.record_batch_size,
            flush_s=spec.record_flush_s,
            fallback_dir=record_dir or project.config.base_dir,
        )
        recorder.profiler = _live_profiler(project.config, client, mv)
    try:
        return ModelService(loaded, spec, client, recorder)
    except Exception:
        loaded.close()
        raise
