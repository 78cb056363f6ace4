"""The BentoML peer of the serving benchmark: the same model behind BentoML's adaptive batching.

Served by ``bentoml serve bench.serving_bentoml:BenchService`` from BentoML's own venv
(``.venv-bentoml``, built on first use by :mod:`bench.serving_bench` from
``bench/bentoml-requirements.txt``), with ``BENCH_MODEL_PATH`` naming a cloudpickle file of
the fitted scikit-learn model (the file the bare route loads). ``POST /species`` takes
``{"rows": [row]}``: one JSON row, wrapped in the one list argument a batchable BentoML API
takes; BentoML's dispatcher concatenates the lists of concurrent requests into one call of
``species`` (up to ``max_batch_size`` rows) and splits the answer back, one list per request.

Configured as fairly as the others: the benchmark's ``--workers`` (``BENCH_WORKERS``,
default 1; the benchmark pins every process of it to the CPUs the other servers get), access log off (keel's is off too),
Prometheus metrics on (keel keeps its own on). ``max_latency_ms`` is BentoML's latency goal
for a batch: the dispatcher sends a batch early when waiting longer would pass it, and
refuses a request it cannot answer within it (503), so it is set high enough for the
closed loop's queue (16 requests) never to be refused.
"""

from __future__ import annotations

import os

import bentoml

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MAX_BATCH_SIZE = 64  # keel's api.batching.max_batch_size in the benchmark
MAX_LATENCY_MS = 1000


@bentoml.service(
    workers=int(os.environ.get("BENCH_WORKERS", "1")),  # --workers of the benchmark
    logging={"access": {"enabled": False}},
    traffic={"timeout": 30},
)
class BenchService:
    """One batchable route over the fitted model."""

    def __init__(self) -> None:
        import cloudpickle

        with open(os.environ["BENCH_MODEL_PATH"], "rb") as handle:
            self.model = cloudpickle.load(handle)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def species(self, rows: list[dict[str, float]]) -> list[str]:
        """One species per row; concurrent requests' rows arrive here as one list."""
        import pandas as pd

        return [str(p) for p in self.model.predict(pd.DataFrame(rows)[FEATURES])]
