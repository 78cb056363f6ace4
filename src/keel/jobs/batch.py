"""``keel batch-predict`` through an executor: on a Dask cluster, partition by partition.

With a :class:`~keel.jobs.dask.DaskExecutor`, :func:`batch_predict` reads the source as a
Dask dataframe on the workers (``csv``, ``euro_csv`` and ``parquet`` sources, local paths
or fsspec URLs the workers can reach; CSV files are split into pieces of
``jobs.partition_mb``), predicts each partition on a worker with the model version loaded
there once per worker process, and writes the sink here, partition by partition in the
source's order, through the sink's own ``put_chunks``: the sink ends up whole or, if
anything fails, as it was, exactly as with the in-process command. Other source types
(SQL, JSON lines …) are read here in chunks of ``chunksize`` rows and each chunk is
predicted on a worker. At most two partitions per worker thread are in flight at once.

With any other executor the in-process :func:`keel.lifecycle.batch_predict` runs.

A worker process predicts one partition at a time (model code need not be thread-safe,
as in ``keel serve``): start workers with ``--nthreads 1`` and more ``--nworkers`` to use
more cores.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from keel.config import Config
    from keel.jobs.base import Executor
    from keel.lifecycle.predicting import BatchResult
    from keel.tracking.client import Client

#: source types a Dask dataframe is read from on the workers
DASK_READABLE = ("csv", "euro_csv", "parquet")
#: partitions in flight per worker thread
IN_FLIGHT_PER_THREAD = 2


def batch_predict(
    source: str,
    sink: str,
    ref: str | None = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    executor: Executor | None = None,
    chunksize: int = 10_000,
    live_code: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Predict data source ``source`` into data sink ``sink`` with a registered version, on
    ``executor`` (a Dask cluster) or, for any other executor or none, in this process.

    Args: as :func:`keel.lifecycle.batch_predict`, plus ``executor``.

    Example:
        >>> from keel.jobs.dask import DaskExecutor
        >>> ex = DaskExecutor(".keel/jobs", scheduler="tcp://10.0.0.5:8786")   # doctest: +SKIP
        >>> batch_predict("to_score", "predictions", executor=ex).rows
        1000000
    """
    from keel.jobs.dask import DaskExecutor

    if not isinstance(executor, DaskExecutor):
        from keel.lifecycle.predicting import batch_predict as in_process

        return in_process(
            source,
            sink,
            ref,
            config=config,
            client=client,
            chunksize=chunksize,
            live_code=live_code,
            progress=progress,
        )
    return _on_dask(source, sink, ref, config, client, executor, chunksize, live_code, progress)


def _on_dask(
    source: str,
    sink: str,
    ref: str | None,
    config: Config | str | os.PathLike[str] | None,
    client: Client | None,
    executor: Any,
    chunksize: int,
    live_code: bool,
    progress: Callable[[int], None] | None,
) -> BatchResult:
    from keel.errors import ConfigError
    from keel.jobs.tasks import job_env
    from keel.lifecycle.predicting import BatchResult
    from keel.lifecycle.project import Project
    from keel.lifecycle.runs import tracked_run

    if isinstance(chunksize, bool) or chunksize < 1:
        raise InvalidInput("chunksize must be a positive number of rows")
    project = Project.open(config, client)
    try:
        if project.config.path is None:
            raise ConfigError(f"batch-predict on Dask needs keel.yml ({project.config.describe()})")
        data_source = project.catalog.source(source)
        data_sink = project.catalog.sink(sink)
        mv = project.client.get_model_version(project.resolve_ref(ref))
        env = job_env(project.config, project.client.settings)
        worker_args: dict[str, Any] = {
            "batch": uuid.uuid4().hex,  # a model is loaded once per worker and batch
            "config": str(project.config.path.resolve()),
            "store": env["KEEL_STORE"],
            "artifacts": env["KEEL_ARTIFACTS"],
            "project": env["KEEL_PROJECT"],
            "cache_dir": env.get("KEEL_CACHE_DIR"),
            "ref": f"{mv.model}@{mv.version}",
            "live_code": live_code,
            "chunksize": chunksize,
        }
        dask_client = executor.connect()
        try:
            pieces, how, dtypes = _pieces(data_source, chunksize, executor.partition_mb)
            if dtypes is not None:
                worker_args.update(dtypes=dtypes, label=data_source.label)
            tags = {
                "model": mv.model,
                "model_version": mv.version,
                "source": source,
                "sink": sink,
                "job_executor": "dask",
            }
            title = f"batch-predict {mv.model} v{mv.version}"
            with tracked_run(project, "batch-predict", title, tags) as run:
                run.log_params(
                    {
                        "source": source,
                        "sink": sink,
                        "chunksize": chunksize,
                        "executor": "dask",
                        "partitioning": how,
                    }
                )
                started = time.perf_counter()
                counter = _Counter(progress)
                rows = data_sink.put_chunks(
                    counter.count(_predicted(dask_client, pieces, worker_args))
                )
                seconds = time.perf_counter() - started
                run.log_metrics(
                    {
                        "rows": rows,
                        "seconds": seconds,
                        "rows_per_second": rows / seconds if seconds else 0.0,
                        "partitions": counter.partitions,
                    }
                )
            return BatchResult(rows, seconds, mv, run.refresh())
        finally:
            dask_client.close()
    finally:
        project.close()


class _Counter:
    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.rows = 0
        self.partitions = 0

    def count(self, frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            self.partitions += 1
            self.rows += len(frame)
            if self.progress is not None:
                self.progress(self.rows)
            if len(frame):
                yield frame


def _pieces(
    source: Any, chunksize: int, partition_mb: float
) -> tuple[Iterable[Any], str, dict[str, Any] | None]:
    """What each task predicts: a Dask dataframe's partitions (read on the workers) or
    chunks read here; how (for the run's params); the CSV source's dtypes file, if any."""
    if source.type in DASK_READABLE:
        return *_dask_partitions(source, partition_mb), None
    if not source.gives_frames:
        raise InvalidInput(f"{source.label} (type {source.type}) gives no data frames to predict")
    return _local_chunks(source, chunksize), f"chunks of {chunksize} rows read here", None


def _local_chunks(source: Any, chunksize: int) -> Iterator[pd.DataFrame]:
    if source.chunked and source.settings.expires == 0:
        yield from source.get_dataframe(chunksize=chunksize)
        return
    frame = source.get_dataframe()
    for start in range(0, len(frame), chunksize):
        yield frame.iloc[start : start + chunksize]


def _dask_partitions(source: Any, partition_mb: float) -> tuple[list[Any], str]:
    """The source's partitions as Dask delayed objects (nothing is read yet)."""
    import dask.dataframe as dd

    path = source.path_for(None)
    options = dict(source.settings.options)
    storage = source.storage_options(path)
    if source.type == "parquet":
        frame = dd.read_parquet(path, storage_options=storage, **options)
    else:
        kwargs: dict[str, Any] = {"sep": ";", "decimal": ","} if source.type == "euro_csv" else {}
        spec = source.prepare()  # the dtypes file, when the source has one
        if spec is not None:
            from keel.data.dtypes import read_csv_kwargs

            kwargs.update(read_csv_kwargs(spec))
        kwargs.update(options)
        frame = dd.read_csv(
            path,
            blocksize=max(1, int(partition_mb * 1024 * 1024)),
            storage_options=storage,
            **kwargs,
        )
    parts = list(frame.to_delayed())
    return parts, f"dask dataframe of {len(parts)} partition{'' if len(parts) == 1 else 's'}"


def _predicted(
    dask_client: Any, pieces: Iterable[Any], worker_args: dict[str, Any]
) -> Iterator[pd.DataFrame]:
    """Each piece's predictions, in order, with a bounded number of pieces in flight."""
    import dask
    from dask.delayed import Delayed

    threads = sum(dask_client.nthreads().values()) or 1
    limit = max(2, IN_FLIGHT_PER_THREAD * threads)
    window: deque[Any] = deque()
    try:
        for piece in pieces:
            if isinstance(piece, Delayed):  # a partition the workers read themselves
                task = dask.delayed(predict_partition)(piece, **worker_args)
                window.append(dask_client.compute(task))
            else:
                window.append(
                    dask_client.submit(predict_partition, piece, pure=False, **worker_args)
                )
            if len(window) >= limit:
                yield _take(window.popleft())
        while window:
            yield _take(window.popleft())
    finally:
        for future in window:  # a failure: what was still running is not needed
            future.cancel()


def _take(future: Any) -> pd.DataFrame:
    try:
        return future.result()
    finally:
        future.release()


# --------------------------------------------------------------------------- on the worker

_loaded: dict[tuple[Any, ...], Any] = {}
_loaded_lock = threading.Lock()
#: model versions kept loaded per worker process
KEEP_LOADED = 2


def predict_partition(
    part: pd.DataFrame,
    *,
    batch: str,
    config: str,
    store: str,
    artifacts: str,
    project: str,
    cache_dir: str | None,
    ref: str,
    live_code: bool,
    chunksize: int,
    dtypes: dict[str, Any] | None = None,
    label: str = "",
) -> pd.DataFrame:
    """Predictions for one partition (on a worker): ``predict_batch`` on chunks of
    ``chunksize`` rows, as the in-process command calls it. ``dtypes`` is a CSV source's
    dtypes file, enforced as the source itself does."""
    import pandas as pd

    from keel.models.base import batch_frame

    if dtypes is not None:
        from keel.data.dtypes import enforce_dtypes

        part = enforce_dtypes(part, dtypes, label)
    key = (batch, config, store, artifacts, project, cache_dir, ref, live_code)
    with _loaded_lock:  # one partition at a time per process: model code need not be thread-safe
        loaded = _model(key)
        outputs = []
        for start in range(0, len(part), chunksize):
            chunk = part.iloc[start : start + chunksize]
            outputs.append(batch_frame(chunk, loaded.predict_batch(chunk)))
    if not outputs:
        return part.iloc[0:0]
    return outputs[0] if len(outputs) == 1 else pd.concat(outputs, ignore_index=True)


def _model(key: tuple[Any, ...]) -> Any:
    """The loaded model version for ``key`` (loaded once per process; held by the lock)."""
    found = _loaded.get(key)
    if found is not None:
        return found[0]
    from keel.lifecycle.loading import load_version
    from keel.lifecycle.project import Project
    from keel.tracking.client import Client

    while len(_loaded) >= KEEP_LOADED:
        _close(_loaded.pop(next(iter(_loaded))))
    _batch, config, store, artifacts, project_name, cache_dir, ref, live_code = key
    client = Client(
        store=store, artifacts=artifacts, project=project_name, cache_dir=cache_dir, config=config
    )
    try:
        project = Project.open(config, client)
        loaded = load_version(project, client, ref, live_code=live_code).setup()
    except BaseException:
        client.close()
        raise
    _loaded[key] = (loaded, project, client)
    return loaded


def _close(entry: tuple[Any, Any, Any]) -> None:
    loaded, project, client = entry
    for close in (loaded.close, project.close, client.close):
        with contextlib.suppress(Exception):  # a failing teardown must not fail the next batch
            close()
