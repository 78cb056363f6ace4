"""A decision tree on iris, written as for ML Launchpad (only the import names keel)."""

import logging

import pandas as pd
from sklearn import tree
from sklearn.metrics import accuracy_score, confusion_matrix

from keel.compat.launchpad import ModelInterface, ModelMakerInterface, order_columns, report

logger = logging.getLogger(__name__)


class MyExampleModelMaker(ModelMakerInterface):
    """Creates a model"""

    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        df = data_sources["petals"].get_dataframe()
        X = df.drop("variety", axis=1)
        y = df["variety"]

        X_ordered = order_columns(X)

        my_tree = tree.DecisionTreeClassifier(random_state=0)
        my_tree.fit(X_ordered, y)

        report("meaning_of_life", 42)
        report("train_data_used", df)

        return my_tree

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        df = data_sources["petals_test"].get_dataframe()
        X_test = order_columns(df.drop("variety", axis=1))
        y_test = df["variety"]

        report("test_data_used", df)

        y_predict = model.predict(X_test)

        acc = accuracy_score(y_test, y_predict)
        conf = confusion_matrix(y_test, y_predict).tolist()

        return {"accuracy": acc, "confusion_matrix": conf}


class MyExampleModel(ModelInterface):
    """Uses the created Data Science Model"""

    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        if "test_key" in args_dict:
            # URI param example (an uri param is part of args_dict just like any other input)
            key = args_dict["test_key"]
            logger.info("Got the uri parameter (ID) %s", key)
            df = data_sources["batch_input"].get_dataframe()
            df["myid"] = df["myid"].apply(str)
            X = order_columns(df.loc[df["myid"] == key])
            y = model.predict(X.drop("myid", axis=1))[0]
            return {"iris_variety": y, "unit": args_dict["hallo"]}
        elif "sepal.length" not in args_dict or args_dict["sepal.length"] is None:
            # Batch prediction example
            X = order_columns(data_sources["batch_input"].get_dataframe())
            y = model.predict(X.drop("myid", axis=1))
            X["pred"] = y
            data_sinks["predictions"].put_dataframe(X)
            return {"status": "ok", "bogus_rows": len(data_sources["blabla"].get_dataframe())}

        X = order_columns(pd.DataFrame(args_dict, index=[0]))
        y = model.predict(X)[0]
        return {"iris_variety": y}
