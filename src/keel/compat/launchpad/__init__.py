"""ML Launchpad on keel: ``import mllaunchpad as mllp`` becomes ``import keel.compat.launchpad as mllp``.

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
"""

from __future__ import annotations

from keel.compat.launchpad.model_interface import (
    ModelInterface,
    ModelMakerInterface,
    order_columns,
    report,
)

__all__ = ["ModelInterface", "ModelMakerInterface", "order_columns", "report"]
