"""SimpleML's Dataset: a persistable holding a data frame, its label columns and splits.

Saved, it is a keel dataset version of the same name (its files are the saved artifact),
produced by the save run.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.compat.simpleml.datasets.dataset_splits import Split
from keel.compat.simpleml.persistables.base_persistable import Persistable
from keel.compat.simpleml.persistables.related import Related
from keel.compat.simpleml.save_patterns.decorators import ExternalArtifactDecorators
from keel.compat.simpleml.utils.errors import DatasetError

if TYPE_CHECKING:
    from keel.compat.simpleml.pipelines.base_pipeline import Pipeline

log = logging.getLogger("keel.compat.simpleml")


@ExternalArtifactDecorators.register_artifact(
    artifact_name="dataset", save_attribute="dataframe", restore_attribute="_external_file"
)
class Dataset(Persistable):
    """Base class of datasets; ``build_dataframe()`` makes the data."""

    object_type = "DATASET"
    record_attributes = ("pipeline_id",)

    def __init__(
        self,
        has_external_files: bool = True,
        label_columns: list[str] | None = None,
        other_named_split_sections: dict[str, list[str]] | None = None,
        pipeline_id: uuid.UUID | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("save_patterns", {"dataset": ["disk_pickled"]})
        super().__init__(has_external_files=has_external_files, **kwargs)
        for key, value in (other_named_split_sections or {}).items():
            if not isinstance(value, (list, tuple)):
                raise DatasetError(
                    f"split sections map a name to a list of columns: "
                    f"{key}: {value!r} is not a list"
                )
        self.config["split_section_map"] = {
            "y": list(label_columns or []),
            **{k: list(v) for k, v in (other_named_split_sections or {}).items()},
        }
        self.pipeline_id = pipeline_id

    # --- the pipeline it was derived with ------------------------------------------------

    def add_pipeline(self, pipeline: Pipeline | None) -> None:
        if pipeline is None:
            return
        self.pipeline_id = pipeline.id
        self.pipeline = pipeline

    pipeline = Related("PIPELINE", "pipeline_id")

    # --- the data ------------------------------------------------------------------------

    @property
    def dataframe(self) -> Any:
        self.load_if_unloaded("dataset")
        if getattr(self, "_external_file", None) is None:
            self.build_dataframe()
        return self._dataframe

    @dataframe.setter
    def dataframe(self, df: Any) -> None:
        self._validate_state(df)
        self._validate_data(df)
        self._validate_schema(df)
        self._validate_dtype(df)
        self._dataframe = df

    @property
    def _dataframe(self) -> Any:
        return self._external_file

    @_dataframe.setter
    def _dataframe(self, df: Any) -> None:
        self._external_file = df

    def get_section_columns(self, section: str) -> list[str]:
        return self.config.get("split_section_map", {}).get(section, [])

    @property
    def label_columns(self) -> list[str]:
        return self.get_section_columns("y")

    def _validate_state(self, df: Any) -> None:
        """Hook: check the persistable may be changed."""

    def _validate_data(self, df: Any) -> None:
        """Hook: check the data's contents."""

    def _validate_schema(self, df: Any) -> None:
        """Hook: check the data's columns."""

    def _validate_dtype(self, df: Any) -> None:
        """Hook: check the data's type."""

    def build_dataframe(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define build_dataframe()")

    def _hash(self) -> str:
        """The data frame, the config and the pipeline it came from."""
        pipeline = self.pipeline
        pipeline_hash = None if pipeline is None else (pipeline.hash_ or pipeline._hash())
        return self.custom_hasher((self.dataframe, self.config, pipeline_hash))

    def save(self, allow_duplication: bool | None = None) -> None:
        if self.pipeline is None:
            log.debug("dataset %r has no dataset pipeline", self.name)
        super().save(allow_duplication)

    def _record_in_keel(self, run: Any, files: Path, allow_duplication: bool) -> None:
        import json

        from keel.compat.simpleml import records

        (files / "simpleml-dataset.json").write_text(
            json.dumps(
                records.jsonable(
                    {
                        "id": self.id,
                        "registered_name": self.registered_name,
                        "hash": self.hash_,
                        "config": self.config,
                        "filepaths": self.filepaths,
                    }
                ),
                indent=2,
                sort_keys=True,
            ),
            encoding="utf-8",
        )
        dataset = records.session().client.log_dataset(
            self.name or "default",
            files,
            run=run,
            description=self.version_description or "",
            tags={"simpleml.id": str(self.id), "simpleml.registered_name": self.registered_name},
            allow_duplication=True,
        )
        self.version = dataset.version

    # --- sections ------------------------------------------------------------------------

    @property
    def X(self) -> Any:
        raise NotImplementedError

    @property
    def y(self) -> Any:
        raise NotImplementedError

    def get(self, column: str, split: str | None) -> Any:
        raise NotImplementedError

    def get_feature_names(self) -> list[str]:
        raise NotImplementedError

    def get_split(self, split: str | None) -> Split:
        raise NotImplementedError

    def get_split_names(self) -> list[str]:
        raise NotImplementedError
