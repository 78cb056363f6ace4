"""An ML Launchpad model: the code is Launchpad's, only the import line names keel."""

import pandas as pd
from sklearn import tree
from sklearn.metrics import accuracy_score, confusion_matrix

import keel.compat.launchpad as mllp  # was: import mllaunchpad as mllp

FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]


class IrisModelMaker(mllp.ModelMakerInterface):
    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        df = data_sources["petals"].get_dataframe()
        mllp.report("rows", len(df))
        X = mllp.order_columns(df[FEATURES])
        return tree.DecisionTreeClassifier(random_state=0, **model_conf["params"]).fit(
            X, df["species"]
        )

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        df = data_sources["petals_test"].get_dataframe()
        predicted = model.predict(mllp.order_columns(df[FEATURES]))
        return {
            "accuracy": accuracy_score(df["species"], predicted),
            "confusion_matrix": confusion_matrix(df["species"], predicted).tolist(),
        }


class IrisModel(mllp.ModelInterface):
    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        row = mllp.order_columns(pd.DataFrame([{k: float(args_dict[k]) for k in FEATURES}]))
        return {"species": model.predict(row)[0]}
