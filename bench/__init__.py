"""Benchmarks of keel against MLflow (SQLite backend), run with ``python -m bench``.

Three measures, each taken for both systems in the same process, on fresh temporary stores:

* one-by-one metric logging (``run.log_metrics`` vs ``MlflowClient.log_metric``);
* one large metric batch (``client.log_batch`` vs ``MlflowClient.log_batch``);
* a filtered, sorted ``find_runs`` / ``search_runs`` over many runs, bulk-loaded with the same
  seeded data into each system's own schema, with the answers checked against the truth.

Modules: :mod:`bench.data` (the synthetic runs), :mod:`bench.logging_bench`,
:mod:`bench.populate`, :mod:`bench.query_bench` and :mod:`bench.report`.
"""

from __future__ import annotations

import os

# MLflow reads these when it is imported: no usage telemetry from a benchmark, and the file
# store guard off (the benchmark itself only uses sqlite:/// URIs).
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
