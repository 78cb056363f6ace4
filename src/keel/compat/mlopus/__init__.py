"""mlopus on keel: ``from keel.compat import mlopus`` in place of ``import mlopus``.

This package owns the mlopus-shaped surface of keel's tracking client: the modules sit where
mlopus has them (``mlopus.mlflow``, ``mlopus.mlflow.api.base``, ``…api.run``,
``…api.common.schema`` …), so ``mlopus.mlflow.get_api(conf=…)``, ``mlopus.mlflow.RunStatus``
and the entity handles are found by the same names. The work is done by
:class:`keel.Client`; nothing here stores or moves data itself. ``mlopus.artschema``,
``mlopus.lineage`` and the Kedro hooks are not provided.
"""

from __future__ import annotations

from keel.compat.mlopus import mlflow

#: the mlopus release whose MLflow API this package follows
VERSION = "1.6.3"

__all__ = ["VERSION", "mlflow"]
