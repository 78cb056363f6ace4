"""``keel predict`` (one JSON input) and ``keel batch-predict`` (a source, in chunks, to a sink)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.lifecycle.project import Project
from keel.lifecycle.runs import scratch, tracked_run

if TYPE_CHECKING:
    import pandas as pd

    from keel.config import Config
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi, RunApi


def predict(
    inputs: Any,
    ref: str | None = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    live_code: bool = False,
) -> Any:
    """One prediction with a registered version (default: the config's model and label);
    ``setup`` and ``teardown`` run around it. Returns plain JSON-able Python."""
    from keel.lifecycle.loading import load_version

    project = Project.open(config, client)
    try:
        with load_version(
            project, project.client, project.resolve_ref(ref), live_code=live_code
        ) as loaded:
            return loaded.predict(inputs)
    finally:
        project.close()


@dataclass
class BatchResult:
    rows: int
    seconds: float
    version: ModelVersionApi
    run: RunApi


def batch_predict(
    source: str,
    sink: str,
    ref: str | None = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    chunksize: int = 10_000,
    live_code: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Stream data source ``source`` through ``predict_batch`` into data sink ``sink``.

    The source is read ``chunksize`` rows at a time when its type can (CSV, parquet, JSON
    lines, SQL); the sink receives every chunk or, if anything fails, is left as it was.
    ``progress(rows)`` is called after each chunk. The work is a ``batch-predict`` run.
    """
    from keel.lifecycle.loading import load_version
    from keel.models.base import batch_frame

    if isinstance(chunksize, bool) or chunksize < 1:
        raise InvalidInput("chunksize must be a positive number of rows")
    project = Project.open(config, client)
    try:
        data_source = project.catalog.source(source)
        data_sink = project.catalog.sink(sink)
        mv = project.client.get_model_version(project.resolve_ref(ref))
        tags = {"model": mv.model, "model_version": mv.version, "source": source, "sink": sink}
        title = f"batch-predict {mv.model} v{mv.version}"
        with scratch("batch") as work, tracked_run(project, "batch-predict", title, tags) as run:
            run.log_params({"source": source, "sink": sink, "chunksize": chunksize})
            started = time.perf_counter()
            with load_version(
                project,
                project.client,
                f"{mv.model}@{mv.version}",
                live_code=live_code,
                work_dir=work,
            ) as loaded:

                def predicted() -> Iterator[pd.DataFrame]:
                    done = 0
                    for chunk in _chunks(data_source, chunksize):
                        out = batch_frame(chunk, loaded.predict_batch(chunk))
                        done += len(chunk)
                        if progress is not None:
                            progress(done)
                        yield out

                rows = data_sink.put_chunks(predicted())
            seconds = time.perf_counter() - started
            run.log_metrics(
                {
                    "rows": rows,
                    "seconds": seconds,
                    "rows_per_second": rows / seconds if seconds else 0.0,
                }
            )
        return BatchResult(rows, seconds, mv, run.refresh())
    finally:
        project.close()


def _chunks(source: Any, chunksize: int) -> Iterator[pd.DataFrame]:
    if source.chunked and source.settings.expires == 0:
        yield from source.get_dataframe(chunksize=chunksize)
        return
    frame = source.get_dataframe()
    for start in range(0, len(frame), chunksize):
        yield frame.iloc[start : start + chunksize]
