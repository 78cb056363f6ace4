"""The model lifecycle: train, retest, predict, batch-predict, generate-dataset, load.

Wires keel.yml, the data catalog, the model code and the tracking client together. The CLI
commands of the same names are thin callers of these functions.
"""

from __future__ import annotations

from keel.lifecycle.datasets import generate_dataset
from keel.lifecycle.loading import LoadedModel, load_model
from keel.lifecycle.predicting import BatchResult, batch_predict, predict
from keel.lifecycle.runs import RunFailed
from keel.lifecycle.scaffold import init_project
from keel.lifecycle.training import RetestResult, TrainResult, retest, train

__all__ = [
    "BatchResult",
    "LoadedModel",
    "RetestResult",
    "RunFailed",
    "TrainResult",
    "batch_predict",
    "generate_dataset",
    "init_project",
    "load_model",
    "predict",
    "retest",
    "train",
]
