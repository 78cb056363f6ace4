"""ML Launchpad on keel: ``import mllaunchpad as mllp`` is ``import keel.compat.launchpad as mllp``.

The package has ML Launchpad's layout, so only the import prefix changes:
``.model_interface`` (ModelMakerInterface, ModelInterface), ``.resource`` (DataSource and
DataSink plugins with ``serves``, to_plain_python_obj, order_columns), ``.datasources``
(the built-in source and sink classes), ``.config`` (get_validated_config),
``.model_actions`` (train_model, retest, predict), ``.api`` (generate_raml,
get_api_base_url), ``.wsgi`` (the ``application`` a production server imports) and
``.cli`` (``python -m keel.compat.launchpad -c cfg.yml train``).

Example:
    >>> import keel.compat.launchpad as mllp             # doctest: +SKIP
    >>> class IrisMaker(mllp.ModelMakerInterface):
    ...     def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
    ...         df = data_sources["petals"].get_dataframe()
    ...         mllp.report("rows", len(df))
    ...         return tree.DecisionTreeClassifier().fit(df[X], df["variety"])
    ...     def test_trained_model(self, model_conf, data_sources, data_sinks, model):
    ...         df = data_sources["petals_test"].get_dataframe()
    ...         return {"accuracy": model.score(df[X], df["variety"])}
    >>> class IrisModel(mllp.ModelInterface):
    ...     def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
    ...         return {"variety": model.predict(pd.DataFrame([args_dict])[X])[0]}
    >>> conf = mllp.get_validated_config("tree_cfg.yml")
    >>> model, metrics = mllp.train_model(conf)
    >>> mllp.predict(conf, arg_dict={"petal.width": 1.4, ...})
    >>> mllp.list_models(conf)["IrisModel"]["latest"]["metrics"]

Importing the package stays light: the submodules are imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel.compat.launchpad.model_interface import (
    ModelInterface,
    ModelMakerInterface,
    order_columns,
    report,
)

if TYPE_CHECKING:
    from keel.compat.launchpad.config import get_validated_config, get_validated_config_str
    from keel.compat.launchpad.model_actions import list_models, predict, retest, train_model
    from keel.compat.launchpad.resource import to_plain_python_obj

__all__ = [
    "ModelInterface",
    "ModelMakerInterface",
    "get_validated_config",
    "get_validated_config_str",
    "list_models",
    "order_columns",
    "predict",
    "report",
    "retest",
    "to_plain_python_obj",
    "train_model",
]

_SUBMODULES = {
    "api",
    "cli",
    "config",
    "datasources",
    "model_actions",
    "model_interface",
    "resource",
    "wsgi",
}
_LAZY = {
    "get_validated_config": "keel.compat.launchpad.config",
    "get_validated_config_str": "keel.compat.launchpad.config",
    "list_models": "keel.compat.launchpad.model_actions",
    "predict": "keel.compat.launchpad.model_actions",
    "retest": "keel.compat.launchpad.model_actions",
    "train_model": "keel.compat.launchpad.model_actions",
    "to_plain_python_obj": "keel.compat.launchpad.resource",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
