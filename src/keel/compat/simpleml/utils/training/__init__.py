"""Creating persistables from parameters (``*Creator.retrieve_or_create``)."""

from keel.compat.simpleml.utils.training.create_persistable import (
    DatasetCreator,
    MetricCreator,
    ModelCreator,
    PersistableCreator,
    PipelineCreator,
)

__all__ = [
    "DatasetCreator",
    "MetricCreator",
    "ModelCreator",
    "PersistableCreator",
    "PipelineCreator",
]
