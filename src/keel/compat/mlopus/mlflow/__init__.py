"""``mlopus.mlflow`` on keel: ``get_api``, ``RunStatus``, the API class and entity handles.

``from keel.compat import mlopus`` then ``mlopus.mlflow.get_api(conf={…})`` gives mlopus'
MLflow API over :class:`keel.Client` (see :mod:`keel.compat.mlopus.mlflow.api.base`).
"""

from __future__ import annotations

from keel.compat.mlopus.mlflow import providers
from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi
from keel.compat.mlopus.mlflow.api.common import exceptions, schema
from keel.compat.mlopus.mlflow.api.exp import ExpApi
from keel.compat.mlopus.mlflow.api.model import ModelApi
from keel.compat.mlopus.mlflow.api.mv import ModelVersionApi
from keel.compat.mlopus.mlflow.api.run import RunApi
from keel.compat.mlopus.mlflow.utils import api_conf_schema, get_api, list_api_plugins

RunStatus = schema.RunStatus

__all__ = [
    "BaseMlflowApi",
    "ExpApi",
    "ModelApi",
    "ModelVersionApi",
    "RunApi",
    "RunStatus",
    "api_conf_schema",
    "exceptions",
    "get_api",
    "list_api_plugins",
    "providers",
]
