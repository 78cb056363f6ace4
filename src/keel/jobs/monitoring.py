"""Monitoring at scale on the Dask executor: ``keel monitor update`` and ``keel monitor
profile`` with ``--executor dask`` (or keel.yml's ``jobs: {executor: dask}``).

- :func:`dask_window_mapper` runs each time window of ``keel monitor update`` on a Dask
  worker: the worker opens the store (the job's store settings, as
  :mod:`keel.jobs.batch` passes them), reads the window's stored invocation records and
  returns their profile as bytes; the windows come back here in order, where
  :func:`keel.monitoring.update.update_profiles` stores them as the in-process command does.
- :func:`profile_source_on_dask` makes a version's reference profile of a large data source:
  each partition is read and profiled on a worker (CSV and parquet sources as a Dask
  dataframe the workers read, as ``keel batch-predict`` does; other sources in chunks read
  here), and the partition profiles are merged here in the source's order. Every sketch
  merges (counts, moments by Chan's formulas, KLL, frequent items, HyperLogLog), so the
  result is the profile of the whole source. The model's outputs are profiled on a uniform
  sample of up to ``monitoring.output_sample_rows`` rows, drawn partition by partition on
  the workers and predicted here, as :func:`keel.lifecycle.monitoring.profile_reference`
  predicts its sample.

``dask`` and ``distributed`` are imported when a cluster is used (``pip install
'keel[dask]'``); without them, or without a scheduler, the commands stop with one line.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from keel.config import Config
    from keel.jobs.dask import DaskExecutor
    from keel.monitoring.profiles import Profile, ProfileSettings
    from keel.monitoring.update import WindowTask
    from keel.tracking.client import Client

#: tasks in flight per worker thread (results are taken in order; the rest wait)
IN_FLIGHT_PER_THREAD = 2
#: rows per chunk of a source Dask cannot read (read here, profiled on a worker)
CHUNK_ROWS = 50_000
#: the seed of the sample of rows whose outputs are profiled (the same source, the same rows)
SAMPLE_SEED = 0


# --------------------------------------------------------------------------- here


def _executor(config: Config, client: Client) -> DaskExecutor:
    """keel.yml's Dask executor, its scheduler answering (one-line errors if not)."""
    from importlib.util import find_spec

    from keel.jobs.dask import INSTALL_HINT, DaskExecutor
    from keel.jobs.settings import jobs_dir_for, jobs_section

    executor = DaskExecutor.from_settings(
        jobs_section(config), jobs_dir_for(config, client.settings)
    )
    if find_spec("distributed") is None:
        raise ConfigError(f"the dask executor needs dask distributed: {INSTALL_HINT}")
    executor.check_reachable()  # no scheduler: ConfigError; none answering: ExecutorUnavailable
    return executor


def _store_args(config: Config, client: Client) -> dict[str, Any]:
    """What a worker needs to open this store (absolute paths), as batch-predict sends it."""
    from keel.jobs.tasks import job_env

    env = job_env(config, client.settings)
    return {
        "store": env["KEEL_STORE"],
        "artifacts": env["KEEL_ARTIFACTS"],
        "project": env["KEEL_PROJECT"],
        "cache_dir": env.get("KEEL_CACHE_DIR"),
        "config": None if config.path is None else str(config.path.resolve()),
    }


def dask_window_mapper(
    config: Config, client: Client, ref: str | None
) -> Callable[[Sequence[WindowTask]], Iterable[Profile | None]]:
    """``map_windows`` for :func:`keel.lifecycle.monitoring.update`: each window profiled on
    keel.yml's Dask cluster (``ref`` None: keel.yml's model).

    The kinds and sketch settings are those ``update`` uses: the reference profile's kinds
    and keel.yml's ``monitoring:``. The scheduler is checked now; the cluster is connected to
    only when there are windows to profile.
    """
    from keel.lifecycle.monitoring import settings_of
    from keel.lifecycle.project import Project
    from keel.monitoring.storage import load_reference

    executor = _executor(config, client)
    project = Project.open(config, client)
    try:
        mv = client.get_model_version(project.resolve_ref(ref))
    finally:
        project.close()
    settings = settings_of(config)
    try:
        kinds = load_reference(client, mv).kinds()
    except Exception:  # exactly as update() does, so both sides profile with the same kinds
        kinds = None
    worker_args = {
        **_store_args(config, client),
        "version": f"{mv.model}@{mv.version}",
        "window_s": settings.window_s,
        "kinds": kinds,
        "settings": settings.profile,
    }

    def map_windows(tasks: Sequence[WindowTask]) -> Iterable[Profile | None]:
        if not tasks:
            return []
        return _windows(executor, list(tasks), worker_args)

    return map_windows


def _windows(
    executor: DaskExecutor, tasks: list[WindowTask], worker_args: dict[str, Any]
) -> Iterator[Profile | None]:
    from keel.monitoring.profiles import Profile

    dask_client = executor.connect()
    try:
        starts = (
            _submitter(dask_client, profile_window, list(task), worker_args) for task in tasks
        )
        for data in _in_order(dask_client, starts):
            yield None if data is None else Profile.from_bytes(data)
    finally:
        dask_client.close()


def profile_source_on_dask(
    config: Config, client: Client, ref: str | None, source: str | None = None
) -> Profile:
    """Make (again) the reference profile of ``ref`` from data source ``source`` (None: what
    training reads, or ``monitoring.reference``), profiled partition by partition on
    keel.yml's Dask cluster (see the module docstring); stored as the version's reference,
    with the meta :func:`~keel.lifecycle.monitoring.profile_reference` gives it."""
    from keel.jobs.batch import DASK_READABLE, _pieces
    from keel.lifecycle.monitoring import finish_reference, reference_source, settings_of
    from keel.lifecycle.project import Project
    from keel.lifecycle.runs import scratch

    executor = _executor(config, client)
    project = Project.open(config, client)
    try:
        mv = client.get_model_version(project.resolve_ref(ref))
        source = source or reference_source(project)
        if source is None:
            raise ConfigError(
                "no data to profile: give --source NAME (a data source of keel.yml) or set "
                "monitoring.reference"
            )
        data_source = project.catalog.source(source)
        if data_source.type not in DASK_READABLE and not data_source.gives_frames:
            raise InvalidInput(
                f"{data_source.label} (type {data_source.type}) gives no data frames to profile"
            )
        settings = settings_of(project.config)
        sample_rows = settings.section.output_sample_rows if settings.section.outputs else 0
        dask_client = executor.connect()
        try:
            pieces, _how, _dtypes = _pieces(data_source, CHUNK_ROWS, executor.partition_mb)
            profile, sample = _profile_pieces(
                dask_client, pieces, source, project.config, settings.profile, sample_rows
            )
        finally:
            dask_client.close()
        with scratch("monitor") as work:
            return finish_reference(project, mv, profile, sample, source, work)
    finally:
        project.close()


def _profile_pieces(
    dask_client: Any,
    pieces: Iterable[Any],
    source: str,
    config: Config,
    settings: ProfileSettings,
    sample_rows: int,
) -> tuple[Profile, pd.DataFrame | None]:
    """The merged profile of every piece's monitored columns, and a uniform sample of up to
    ``sample_rows`` of their rows (all of them, in order, when they fit)."""
    import numpy as np

    from keel.monitoring.profiles import Profile

    pieces = iter(pieces)
    first = next(pieces, None)
    if first is None:
        raise InvalidInput(f"the reference data ({source}) has no rows to profile")
    args: dict[str, Any] = {"settings": settings, "sample_rows": sample_rows, "seed": 0}
    # The first piece alone: it names the columns (and their kinds) the others are profiled
    # with, so every partition sketches a column the same way, as one pass over the whole would.
    data, rows, sample = _submitter(dask_client, profile_partition, first, args)().result()
    merged = _monitored(Profile.from_bytes(data), source, config)
    columns = list(merged.inputs)
    # a column with no value yet is left to each partition to infer, as a whole pass would
    kinds = {"input": {n: c.kind for n, c in merged.inputs.items() if c.count}}
    rng = np.random.default_rng(SAMPLE_SEED)
    starts = (
        _submitter(
            dask_client,
            profile_partition,
            piece,
            {**args, "columns": columns, "kinds": kinds, "seed": i},
        )
        for i, piece in enumerate(pieces, start=1)
    )
    for data, part_rows, part_sample in _in_order(dask_client, starts):
        merged = merged.merge(Profile.from_bytes(data))
        if sample_rows:
            sample = _merge_samples(sample, rows, part_sample, part_rows, sample_rows, rng)
        rows += part_rows
    return merged, sample


def _monitored(profile: Profile, source: str, config: Config) -> Profile:
    """``profile`` with only the input columns keel.yml's monitoring compares (as
    profile_reference chooses them; InvalidInput when there are none)."""

    from keel.lifecycle.monitoring import monitored_columns

    names = list(profile.inputs)
    chosen = monitored_columns(names, config)
    if not chosen:
        raise InvalidInput(
            f"the reference data ({source}) has none of the features monitored "
            f"(columns: {', '.join(names)}): check monitoring.features"
        )
    profile.inputs = {n: profile.inputs[n] for n in chosen}
    return profile


def _merge_samples(
    a: pd.DataFrame | None,
    a_rows: int,
    b: pd.DataFrame | None,
    b_rows: int,
    size: int,
    rng: Any,
) -> pd.DataFrame | None:
    """A uniform sample of up to ``size`` rows of two sets of ``a_rows`` and ``b_rows`` rows,
    from uniform samples ``a`` and ``b`` of up to ``size`` rows of each: how many come from
    each side is hypergeometric, and which ones uniform within each side's sample. When all
    the rows fit, they are all kept, in order."""
    import numpy as np
    import pandas as pd

    if a is None or not a_rows:
        return b
    if b is None or not b_rows:
        return a
    want = min(size, a_rows + b_rows)
    from_a = int(rng.hypergeometric(a_rows, b_rows, want)) if want < a_rows + b_rows else a_rows
    parts = []
    for side, n in ((a, from_a), (b, want - from_a)):
        if n == len(side):
            parts.append(side)
        elif n:
            keep = np.sort(rng.choice(len(side), size=n, replace=False))
            parts.append(side.iloc[keep])
    return pd.concat(parts, ignore_index=True)


def _submitter(
    dask_client: Any, function: Callable[..., Any], piece: Any, kwargs: Mapping[str, Any]
) -> Callable[[], Any]:
    """A function that starts ``function(piece, **kwargs)`` on the cluster: a Dask delayed
    partition is read on the worker that profiles it; anything else is sent along."""

    def start() -> Any:
        from dask.delayed import Delayed

        if isinstance(piece, Delayed):
            import dask

            return dask_client.compute(dask.delayed(function)(piece, **kwargs))
        return dask_client.submit(function, piece, pure=False, **kwargs)

    return start


def _in_order(dask_client: Any, starts: Iterable[Callable[[], Any]]) -> Iterator[Any]:
    """The results of the tasks ``starts`` start, in order, with a bounded number in flight
    (a failure cancels what is still running)."""
    threads = sum(dask_client.nthreads().values()) or 1
    limit = max(2, IN_FLIGHT_PER_THREAD * threads)
    window: deque[Any] = deque()
    try:
        for start in starts:
            window.append(start())
            if len(window) >= limit:
                yield _take(window.popleft())
        while window:
            yield _take(window.popleft())
    finally:
        for future in window:
            future.cancel()


def _take(future: Any) -> Any:
    try:
        return future.result()
    finally:
        future.release()


# --------------------------------------------------------------------------- on the worker

_clients: dict[tuple[Any, ...], Client] = {}
_clients_lock = threading.Lock()
#: store clients kept open per worker process (one per store a worker is asked to read)
KEEP_CLIENTS = 4


def _worker_client(
    store: str, artifacts: str, project: str, cache_dir: str | None, config: str | None
) -> Client:
    """The store client of this worker process for these settings (opened once: the
    windows of a month are hundreds of tasks). Clients are safe to share between threads,
    as the server's request threads share one."""
    key = (store, artifacts, project, cache_dir, config)
    with _clients_lock:
        found = _clients.get(key)
        if found is not None:
            return found
        from keel.tracking.client import Client

        while len(_clients) >= KEEP_CLIENTS:
            old = _clients.pop(next(iter(_clients)))
            with contextlib.suppress(Exception):  # a failing teardown must not fail a window
                old.close()
        made = _clients[key] = Client(
            store=store, artifacts=artifacts, project=project, cache_dir=cache_dir, config=config
        )
        return made


def profile_window(
    task: Sequence[int],
    *,
    store: str,
    artifacts: str,
    project: str,
    cache_dir: str | None,
    config: str | None,
    version: str,
    window_s: int,
    kinds: Mapping[str, Mapping[str, str]] | None,
    settings: ProfileSettings,
) -> bytes | None:
    """On a worker: the profile of one window's stored records (bytes), None if none."""
    from keel.monitoring.update import profile_window_records

    client = _worker_client(store, artifacts, project, cache_dir, config)
    start, end, since = (int(t) for t in task)
    window = (start, end, since)
    profile = profile_window_records(client, version, window, window_s, kinds, settings)
    return None if profile is None else profile.to_bytes()


def profile_partition(
    part: pd.DataFrame,
    *,
    settings: ProfileSettings,
    sample_rows: int,
    seed: int,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[bytes, int, pd.DataFrame | None]:
    """On a worker: the profile (bytes) of one partition's ``columns`` (all when None), its
    number of rows, and a uniform sample of up to ``sample_rows`` of its rows (all columns:
    the model is asked about them)."""
    from keel.monitoring.profiles import profile_frame

    # a column a piece lacks (JSON lines) is missing in its rows, as in one frame of them all
    inputs = part if columns is None else part.reindex(columns=list(columns))
    profile = profile_frame(inputs, kinds=kinds, settings=settings)
    sample = None
    if sample_rows:
        sample = part if len(part) <= sample_rows else part.sample(n=sample_rows, random_state=seed)
        sample = sample.reset_index(drop=True)
    return profile.to_bytes(), len(part), sample
