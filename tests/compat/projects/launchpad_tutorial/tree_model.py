# The tutorial of ML Launchpad's docs/usage.rst, with only the import prefix changed.
import logging

import pandas as pd
from sklearn import tree
from sklearn.metrics import accuracy_score, confusion_matrix

from keel.compat.launchpad import ModelInterface, ModelMakerInterface, order_columns

logger = logging.getLogger(__name__)


class MyTreeModelMaker(ModelMakerInterface):
    """Creates a Iris prediction model"""

    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        # use data_source instead of reading CSV ourselves:
        df_unordered = data_sources["petals"].get_dataframe()
        df = order_columns(df_unordered)  # make col order reproducible for API use
        X = df.drop("variety", axis=1)
        y = df["variety"]
        model = tree.DecisionTreeClassifier(random_state=0)
        model.fit(X, y)
        return model

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        # use data_source instead of reading CSV ourselves:
        df_unordered = data_sources["petals_test"].get_dataframe()
        df = order_columns(df_unordered)  # make col order reproducible for API use
        X_test = df.drop("variety", axis=1)
        y_test = df["variety"]
        y_predict = model.predict(X_test)
        acc = accuracy_score(y_test, y_predict)
        conf = confusion_matrix(y_test, y_predict).tolist()
        metrics = {"accuracy": acc, "confusion_matrix": conf}
        return metrics


class MyTreeModel(ModelInterface):
    """Uses the created Iris prediction model"""

    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        X = order_columns(pd.DataFrame(args_dict, index=[0]))
        y = model.predict(X)[0]
        return {"prediction": y}
