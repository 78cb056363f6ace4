"""Adding two numbers, written as for ML Launchpad (only the import names keel)."""

import logging

from keel.compat.launchpad import ModelInterface, ModelMakerInterface

logger = logging.getLogger(__name__)


class MyAdditionExampleModelMaker(ModelMakerInterface):
    """Creates a model which adds (this can't really be called training)"""

    def create_trained_model(self, model_conf, data_sources, data_sinks, old_model=None):
        logger.info("%s is preparing for addition...", model_conf["name"])
        return {"offset": 0}

    def test_trained_model(self, model_conf, data_sources, data_sinks, model):
        return {"accuracy": 1 if 3 + 7 + model["offset"] == 10 else 0}


class MyAdditionExampleModel(ModelInterface):
    """Simplest possible 'Data Science Model' example, without using data sources."""

    def predict(self, model_conf, data_sources, data_sinks, model, args_dict):
        return {"my_addition_result": args_dict["x1"] + args_dict["x2"] + model["offset"]}
