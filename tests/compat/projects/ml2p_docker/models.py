"""The happy and unhappy models of ML2P's docker tests, with keel's import lines."""

import logging

from keel.compat.ml2p.core import Model, ModelDatasetGenerator, ModelPredictor, ModelTrainer
from keel.compat.ml2p.errors import APIError, ClientError, ServerError


class HappyModelDatasetGenerator(ModelDatasetGenerator):
    def generate(self):
        logging.info("This looks good!")
        output = self.env.dataset_folder() / "output.txt"
        with output.open("w") as f:
            f.write("Yess!!")


class UnhappyModelDatasetGenerator(ModelDatasetGenerator):
    def generate(self):
        logging.warning("This is not looking good")
        raise ValueError("Much failure")


class HappyModelTrainer(ModelTrainer):
    def train(self):
        logger = logging.getLogger(__name__)
        logger.info("Look at all the training happening!")
        output = self.env.model_folder() / "output.txt"
        with output.open("w") as f:
            f.write("Success!")


class UnhappyModelTrainer(ModelTrainer):
    def train(self):
        logging.info("Oulala! C'est pas possible!")
        raise ValueError("Much unhappiness")


class HappyModelPredictor(ModelPredictor):
    setup_called = False

    def setup(self):
        logging.info("So much set up to do!")
        self.setup_called = True

    def result(self, data):
        logging.info("These predictions are going to be great!")
        if "client_error" in data:
            raise ClientError("client", data["client_error"])
        if "server_error" in data:
            raise ServerError("server", data["server_error"])
        if "flask_api_error" in data:
            raise APIError(data["flask_api_error"])
        if "generic_error" in data:
            raise Exception(data["generic_error"])
        return {"probability": 0.5, "input": data["input"]}


class HappyModel(Model):
    DATASET_GENERATOR = HappyModelDatasetGenerator
    TRAINER = HappyModelTrainer
    PREDICTOR = HappyModelPredictor


class UnhappyModel(Model):
    DATASET_GENERATOR = UnhappyModelDatasetGenerator
    TRAINER = UnhappyModelTrainer
    PREDICTOR = HappyModelPredictor
