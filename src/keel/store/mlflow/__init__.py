"""The MLflow backend: keel's metadata store on an MLflow tracking server.

``keel.Client("mlflow+http://host:5000")`` tracks experiments, runs, params, metrics, tags,
registered models, versions and aliases into MLflow (the artifacts go through the server's
artifact proxy, :mod:`keel.artifacts.mlflow`). MongoDB-style queries are pushed down to
MLflow's filter grammar where they can be expressed and finished in Python otherwise.

Modules: :mod:`~keel.store.mlflow.http` (requests and errors), :mod:`~keel.store.mlflow.codec`
(the mapping of records), :mod:`~keel.store.mlflow.filters` (query pushdown),
:mod:`~keel.store.mlflow.store` (:class:`MlflowStore`). Nothing here imports the ``mlflow``
package: MLflow's REST API is the contract.
"""

from __future__ import annotations

from keel.store.mlflow.http import is_mlflow_url
from keel.store.mlflow.store import MlflowStore

__all__ = ["MlflowStore", "is_mlflow_url"]
