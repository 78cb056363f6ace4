"""SimpleML's errors, on keel's error hierarchy (a ``SimpleMLError`` is a ``KeelError``, so
the ``keel`` command prints it as one line)."""

from __future__ import annotations

from keel.errors import KeelError


class SimpleMLError(KeelError):
    """Anything SimpleML code asked for that cannot be done."""

    prefix = ""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.message = self.prefix + (str(args[0]) if args else "")

    def __str__(self) -> str:
        return self.message


class DatasetError(SimpleMLError):
    prefix = "SimpleML Dataset Error: "


class PipelineError(SimpleMLError):
    prefix = "SimpleML Pipeline Error: "


class ModelError(SimpleMLError):
    prefix = "SimpleML Model Error: "


class MetricError(SimpleMLError):
    prefix = "SimpleML Metric Error: "


class TrainingError(SimpleMLError):
    prefix = "SimpleML Training Error: "


class ScoringError(SimpleMLError):
    prefix = "SimpleML Scoring Error: "
