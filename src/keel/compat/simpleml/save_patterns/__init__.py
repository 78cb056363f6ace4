"""Save patterns: named ways to write an artifact and read it back, with keel's built-ins.

A pattern is a class with ``save(obj, folder, filepath, **params)`` returning JSON-able
filepath data (stored in the persistable's ``filepaths``) and ``load(folder, **filepath
data)`` returning the object. ``folder`` is where the persistable's files are staged before
they go to keel's artifact store (saving) and where they were fetched to (loading).

Built-ins: ``disk_pickled`` and ``cloud_pickled`` (cloudpickle, in keel's artifact store,
wherever that is: a folder, s3://, gs://…), ``pickle`` (the standard library's),
``cloudpickle``, ``joblib`` (also ``disk_joblib``), and ``database_table`` (a DataFrame as a
table in keel's SQL metadata store). Users add their own with
``@SavePatternDecorators.register_save_pattern``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

from keel.compat.simpleml.save_patterns.decorators import (
    ExternalArtifactDecorators,
    SavePatternDecorators,
    deregister_artifact,
    deregister_save_pattern,
    register_artifact,
    register_save_pattern,
)
from keel.compat.simpleml.utils.errors import SimpleMLError

__all__ = [
    "BaseSavePattern",
    "CloudpickleSavePattern",
    "DatabaseTableSavePattern",
    "ExternalArtifactDecorators",
    "JoblibSavePattern",
    "PickleSavePattern",
    "SavePatternDecorators",
    "deregister_artifact",
    "deregister_save_pattern",
    "register_artifact",
    "register_save_pattern",
]


class BaseSavePattern:
    """A file-based pattern: ``serialize(obj, path)`` and ``deserialize(path)``."""

    SAVE_PATTERN: ClassVar[str]
    suffix: ClassVar[str] = ".pkl"

    @classmethod
    def save(cls, obj: Any, folder: Path, filepath: str, **params: Any) -> dict[str, Any]:
        name = f"{filepath}{cls.suffix}"
        cls.serialize(obj, Path(folder) / name)
        return {"filepath": name}

    @classmethod
    def load(
        cls, folder: Path, filepath: str | None = None, legacy: str | None = None, **_: Any
    ) -> Any:
        name = filepath or legacy
        if name is None:
            raise SimpleMLError(f"{cls.SAVE_PATTERN}: the saved filepath data names no file")
        path = Path(folder) / name
        if not path.is_file():
            raise SimpleMLError(f"{cls.SAVE_PATTERN}: {name} is not among the saved files")
        return cls.deserialize(path)

    @staticmethod
    def serialize(obj: Any, path: Path) -> None:
        raise NotImplementedError

    @staticmethod
    def deserialize(path: Path) -> Any:
        raise NotImplementedError


class CloudpickleSavePattern(BaseSavePattern):
    """cloudpickle into keel's artifact store (SimpleML's ``disk_pickled``)."""

    SAVE_PATTERN = "disk_pickled"

    @staticmethod
    def serialize(obj: Any, path: Path) -> None:
        import cloudpickle

        with path.open("wb") as handle:
            cloudpickle.dump(obj, handle)

    @staticmethod
    def deserialize(path: Path) -> Any:
        with path.open("rb") as handle:
            return pickle.load(handle)


class PickleSavePattern(BaseSavePattern):
    """The standard library's pickle."""

    SAVE_PATTERN = "pickle"

    @staticmethod
    def serialize(obj: Any, path: Path) -> None:
        with path.open("wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def deserialize(path: Path) -> Any:
        with path.open("rb") as handle:
            return pickle.load(handle)


class JoblibSavePattern(BaseSavePattern):
    """joblib (efficient for large numpy arrays)."""

    SAVE_PATTERN = "joblib"
    suffix = ".joblib"

    @staticmethod
    def serialize(obj: Any, path: Path) -> None:
        import joblib

        joblib.dump(obj, path)

    @staticmethod
    def deserialize(path: Path) -> Any:
        import joblib

        return joblib.load(path)


class DatabaseTableSavePattern:
    """A DataFrame as a table in keel's metadata store (SQLite or PostgreSQL), read back with
    ``select *``. The table is named after the persistable and artifact."""

    SAVE_PATTERN = "database_table"

    @classmethod
    def save(cls, obj: Any, filepath: str, **params: Any) -> dict[str, Any]:
        import pandas as pd

        from keel.compat.simpleml import records

        if not isinstance(obj, pd.DataFrame):
            raise SimpleMLError(
                f"database_table saves pandas DataFrames, not {type(obj).__name__}: "
                "use disk_pickled"
            )
        table = filepath.lower().replace("-", "_")[:63]
        obj.to_sql(table, records.sql_engine("database_table"), index=False, if_exists="fail")
        return {"schema": None, "table": table}

    @classmethod
    def load(cls, table: str, schema: str | None = None, **_: Any) -> Any:  # no files
        import pandas as pd

        from keel.compat.simpleml import records

        return pd.read_sql_table(table, records.sql_engine("database_table"), schema=schema)


for _cls, _names in (
    (CloudpickleSavePattern, ("disk_pickled", "cloud_pickled", "cloudpickle")),
    (PickleSavePattern, ("pickle",)),
    (JoblibSavePattern, ("joblib", "disk_joblib")),
    (DatabaseTableSavePattern, ("database_table",)),
):
    for _name in _names:
        register_save_pattern(_cls, _name, overwrite=True)
