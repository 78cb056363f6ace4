"""SimpleML's utilities: ``Database``, ``PersistableLoader``, the creators and the errors."""

from keel.compat.simpleml.utils.configuration import CONFIG, FILESTORE_DIRECTORY, SIMPLEML_DIRECTORY
from keel.compat.simpleml.utils.database import Database
from keel.compat.simpleml.utils.errors import (
    DatasetError,
    MetricError,
    ModelError,
    PipelineError,
    ScoringError,
    SimpleMLError,
    TrainingError,
)
from keel.compat.simpleml.utils.scoring.load_persistable import PersistableLoader
from keel.compat.simpleml.utils.training.create_persistable import (
    DatasetCreator,
    MetricCreator,
    ModelCreator,
    PersistableCreator,
    PipelineCreator,
)

__all__ = [
    "CONFIG",
    "FILESTORE_DIRECTORY",
    "SIMPLEML_DIRECTORY",
    "Database",
    "DatasetCreator",
    "DatasetError",
    "MetricCreator",
    "MetricError",
    "ModelCreator",
    "ModelError",
    "PersistableCreator",
    "PersistableLoader",
    "PipelineCreator",
    "PipelineError",
    "ScoringError",
    "SimpleMLError",
    "TrainingError",
]
