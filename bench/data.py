"""Seeded synthetic runs: the same params and metrics are loaded into keel and into MLflow.

Runs are generated chunk by chunk from ``numpy.random.default_rng([seed, chunk])`` so both
stores (and the ground truth) see identical values without keeping them all in memory.
Run ``i`` is named ``run-0000i`` in both stores; its ids differ per system and are derived
from the seed, so results are compared through the names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

N_PARAMS = 20
N_METRICS = 10
N_VALUES = 10  # distinct values per param: "v0" .. "v9"
DEFAULT_SEED = 20_240_607
CHUNK_RUNS = 500  # 500 runs x 20 params = 10,000 param rows per executemany

# The query both systems answer.
QUERY_METRIC = "m0"
QUERY_THRESHOLD = 0.5
QUERY_PARAM = "p0"
QUERY_VALUE = "v1"
QUERY_LIMIT = 100

PARAM_KEYS = tuple(f"p{j}" for j in range(N_PARAMS))
METRIC_KEYS = tuple(f"m{j}" for j in range(N_METRICS))
PARAM_VALUES = tuple(f"v{k}" for k in range(N_VALUES))


def run_name(index: int) -> str:
    """The name of synthetic run ``index`` (the same in both stores)."""
    return f"run-{index:07d}"


def run_id(system: str, seed: int, index: int) -> str:
    """A 32-hex run id for one system, stable for a seed."""
    return hashlib.md5(f"{system}/{seed}/{index}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class RunChunk:
    """Consecutive synthetic runs ``start .. start + len - 1``.

    Attributes:
        start: index of the first run.
        params: param value codes, shape (runs, N_PARAMS); value ``k`` is ``"v{k}"``.
        metrics: metric values in [0, 1), shape (runs, N_METRICS).
    """

    start: int
    params: np.ndarray
    metrics: np.ndarray

    def __len__(self) -> int:
        return int(self.params.shape[0])


class SyntheticRuns:
    """``n_runs`` runs with params p0..p19 and metrics m0..m9, reproducible from ``seed``."""

    def __init__(self, n_runs: int, seed: int = DEFAULT_SEED, chunk_runs: int = CHUNK_RUNS):
        self.n_runs = n_runs
        self.seed = seed
        self.chunk_runs = chunk_runs

    def chunks(self) -> Iterator[RunChunk]:
        """The runs, ``chunk_runs`` at a time, identical on every call."""
        for number, start in enumerate(range(0, self.n_runs, self.chunk_runs)):
            size = min(self.chunk_runs, self.n_runs - start)
            rng = np.random.default_rng([self.seed, number])
            params = rng.integers(0, N_VALUES, size=(size, N_PARAMS), dtype=np.int8)
            metrics = rng.random((size, N_METRICS))
            yield RunChunk(start, params, metrics)

    def run(self, index: int) -> tuple[dict[str, str], dict[str, float]]:
        """(params, metrics) of synthetic run ``index``."""
        number = index // self.chunk_runs
        chunk = next(
            c for n, c in enumerate(self.chunks()) if n == number
        )  # chunks are generated lazily: this stops at the right one
        offset = index - chunk.start
        params = {
            k: PARAM_VALUES[int(v)] for k, v in zip(PARAM_KEYS, chunk.params[offset], strict=True)
        }
        metrics = dict(zip(METRIC_KEYS, chunk.metrics[offset].tolist(), strict=True))
        return params, metrics

    def expected_top(self) -> list[tuple[str, float]]:
        """The true answer of the benchmark query: (run name, m0) of the top runs."""
        metric = METRIC_KEYS.index(QUERY_METRIC)
        param = PARAM_KEYS.index(QUERY_PARAM)
        code = PARAM_VALUES.index(QUERY_VALUE)
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for chunk in self.chunks():
            m = chunk.metrics[:, metric]
            hit = (m > QUERY_THRESHOLD) & (chunk.params[:, param] == code)
            indices.append(np.nonzero(hit)[0] + chunk.start)
            values.append(m[hit])
        if not indices:
            return []
        index = np.concatenate(indices)
        value = np.concatenate(values)
        order = np.lexsort((index, -value))[:QUERY_LIMIT]  # value desc, then index
        return [(run_name(int(index[i])), float(value[i])) for i in order]

    def matching(self) -> int:
        """How many runs satisfy the filter (before the limit)."""
        metric = METRIC_KEYS.index(QUERY_METRIC)
        param = PARAM_KEYS.index(QUERY_PARAM)
        code = PARAM_VALUES.index(QUERY_VALUE)
        return int(
            sum(
                int(
                    np.count_nonzero(
                        (c.metrics[:, metric] > QUERY_THRESHOLD) & (c.params[:, param] == code)
                    )
                )
                for c in self.chunks()
            )
        )
