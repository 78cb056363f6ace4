"""SimpleML's datasets (``keel.compat.simpleml.datasets.pandas`` for pandas frames)."""

from keel.compat.simpleml.datasets import pandas
from keel.compat.simpleml.datasets.base_dataset import Dataset
from keel.compat.simpleml.utils.errors import DatasetError

__all__ = ["Dataset", "DatasetError", "pandas"]
