"""An ML2P model: the classes are ML2P's, only the import line names keel."""

from pathlib import Path

import joblib
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier

from keel.compat.ml2p import core as ml2p  # was: from ml2p import core as ml2p

HERE = Path(__file__).parent
FEATURES = ["petal_length", "petal_width", "sepal_length", "sepal_width"]


class IrisDatasetGenerator(ml2p.ModelDatasetGenerator):
    def generate(self):
        df = pd.read_csv(HERE / "data" / "iris_train.csv")
        df.to_csv(self.env.dataset_folder() / "iris.csv", index=False)


class IrisTrainer(ml2p.ModelTrainer):
    def train(self):
        dataset = self.env.dataset_folder() / "iris.csv"
        df = pd.read_csv(dataset if dataset.exists() else HERE / "data" / "iris_train.csv")
        n_neighbors = self.env.ctx.params.get("n_neighbors", 5)  # model.params in keel.yml
        model = KNeighborsClassifier(n_neighbors=n_neighbors).fit(df[FEATURES], df["species"])
        joblib.dump(model, self.env.model_folder() / "model.joblib")

    def evaluate(self):  # keel's optional addition: metrics for train and retest
        model = joblib.load(self.env.model_folder() / "model.joblib")
        df = pd.read_csv(HERE / "data" / "iris_test.csv")
        return {"accuracy": float(model.score(df[FEATURES], df["species"]))}


class IrisPredictor(ml2p.ModelPredictor):
    def setup(self):
        self.model = joblib.load(self.env.model_folder() / "model.joblib")

    def result(self, data):
        return {"species": self.model.predict(pd.DataFrame([data])[FEATURES])[0]}

    def batch_result(self, data):
        return [{"species": s} for s in self.model.predict(pd.DataFrame(data)[FEATURES])]


class IrisModel(ml2p.Model):
    DATASET_GENERATOR = IrisDatasetGenerator
    TRAINER = IrisTrainer
    PREDICTOR = IrisPredictor
