"""Creators: a persistable from parameters, reusing a saved one when it matches.

``retrieve_or_create(**kwargs)`` looks for a saved persistable (by ``id``, by ``name`` and
``version``, else by the hash a new one with these parameters would have) and creates,
fits and saves one when none matches. Dependencies are passed as objects (``dataset=``),
ids (``dataset_id=``) or parameters to look them up by (``dataset_kwargs=``).
"""

from __future__ import annotations

import logging
from typing import Any

from keel.compat.simpleml.utils.errors import TrainingError

log = logging.getLogger("keel.compat.simpleml")


class PersistableCreator:
    kind = ""

    @classmethod
    def retrieve_or_create(cls, **kwargs: Any) -> Any:
        kind, filters = cls.determine_filters(**kwargs)
        found = cls.retrieve(kind, filters)
        if found is not None:
            log.info("using saved %s %r version %s", kind.lower(), found.name, found.version)
            return found
        return cls.create(**kwargs)

    @staticmethod
    def retrieve(kind: str, filters: dict[str, Any]) -> Any:
        from keel.compat.simpleml import records

        runs = records.find_runs(kind, filters)
        if not runs:
            return None
        return records.load(kind, {"id": runs[0].tags["simpleml.id"]})

    @staticmethod
    def retrieve_dependency(creator: type[PersistableCreator], **dependency_kwargs: Any) -> Any:
        if not dependency_kwargs:
            raise TrainingError("name at least one key to look the dependency up by")
        found = creator.retrieve(*creator.determine_filters(**dependency_kwargs))
        if found is None:
            described = ", ".join(
                f"{k}={v!r}" for k, v in dependency_kwargs.items() if not k.endswith("kwargs")
            )
            raise TrainingError(
                f"no saved {creator.kind.lower()} matches {described}: create it first"
            )
        return found

    @classmethod
    def retrieve_dataset(
        cls,
        dataset: Any = None,
        dataset_id: Any = None,
        dataset_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        if dataset is not None:
            return dataset
        if dataset_id is not None:
            return cls.retrieve_dependency(DatasetCreator, id=dataset_id)
        if dataset_kwargs is not None:
            return cls.retrieve_dependency(DatasetCreator, **dataset_kwargs)
        return None

    @classmethod
    def retrieve_pipeline(
        cls,
        pipeline: Any = None,
        pipeline_id: Any = None,
        pipeline_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        if pipeline is not None:
            return pipeline
        if pipeline_id is not None:
            return cls.retrieve_dependency(PipelineCreator, id=pipeline_id)
        if pipeline_kwargs is not None:
            return cls.retrieve_dependency(PipelineCreator, **pipeline_kwargs)
        return None

    @classmethod
    def retrieve_model(
        cls,
        model: Any = None,
        model_id: Any = None,
        model_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        if model is not None:
            return model
        if model_id is not None:
            return cls.retrieve_dependency(ModelCreator, id=model_id)
        if model_kwargs is not None:
            return cls.retrieve_dependency(ModelCreator, **model_kwargs)
        return None

    @staticmethod
    def retrieve_from_registry(registered_name: str) -> Any:
        from keel.compat.simpleml.registries import SIMPLEML_REGISTRY

        found = SIMPLEML_REGISTRY.get(registered_name)
        if found is None:
            from keel.compat.simpleml import records

            records.import_builtins()
            found = SIMPLEML_REGISTRY.get(registered_name)
        if found is None:
            raise TrainingError(
                f"no class is registered as {registered_name!r}: import the module defining it"
            )
        return found

    @classmethod
    def _identity_filters(cls, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if "id" in kwargs:
            return {"id": kwargs["id"]}
        if "name" in kwargs and "version" in kwargs:
            return {"name": kwargs["name"], "version": kwargs["version"]}
        return None

    @classmethod
    def _build(cls, **kwargs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def determine_filters(cls, strict: bool = False, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        filters = cls._identity_filters(kwargs)
        if filters is not None:
            return cls.kind, filters
        if "registered_name" not in kwargs:
            raise TrainingError(
                f"{cls.__name__}: pass id, name and version, or registered_name "
                "(with its dependency)"
            )
        candidate = cls._build(strict=strict, **kwargs)
        return cls.kind, {
            "name": candidate.name,
            "registered_name": candidate.registered_name,
            "hash_": candidate._hash(),
        }

    @classmethod
    def create(cls, registered_name: str, **kwargs: Any) -> Any:
        persistable = cls._build(registered_name=registered_name, strict=True, **kwargs)
        persistable.save()
        return persistable


class DatasetCreator(PersistableCreator):
    kind = "DATASET"

    @classmethod
    def _build(cls, registered_name: str, strict: bool = True, **kwargs: Any) -> Any:
        pipeline = cls.retrieve_pipeline(**kwargs)
        dataset = cls.retrieve_from_registry(registered_name)(**_own(kwargs))
        dataset.add_pipeline(pipeline)
        dataset.build_dataframe()
        return dataset


class PipelineCreator(PersistableCreator):
    kind = "PIPELINE"

    @classmethod
    def _build(cls, registered_name: str, strict: bool = False, **kwargs: Any) -> Any:
        dataset = cls.retrieve_dataset(**kwargs)
        if dataset is None:
            raise TrainingError("PipelineCreator: pass dataset=, dataset_id= or dataset_kwargs=")
        pipeline = cls.retrieve_from_registry(registered_name)(**_own(kwargs))
        pipeline.add_dataset(dataset)
        if strict:
            pipeline.fit()
        return pipeline


class ModelCreator(PersistableCreator):
    kind = "MODEL"

    @classmethod
    def _build(cls, registered_name: str, strict: bool = False, **kwargs: Any) -> Any:
        pipeline = cls.retrieve_pipeline(**kwargs)
        if pipeline is None:
            raise TrainingError("ModelCreator: pass pipeline=, pipeline_id= or pipeline_kwargs=")
        model = cls.retrieve_from_registry(registered_name)(**_own(kwargs))
        model.add_pipeline(pipeline)
        if strict:
            model.fit()
        return model


class MetricCreator(PersistableCreator):
    kind = "METRIC"

    @classmethod
    def _identity_filters(cls, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if "id" in kwargs:
            return {"id": kwargs["id"]}
        model = cls.retrieve_model(**kwargs)
        if "name" in kwargs and "version" in kwargs and model is not None:
            return {"name": kwargs["name"], "version": kwargs["version"], "model_id": model.id}
        return None

    @classmethod
    def _build(cls, registered_name: str, strict: bool = False, **kwargs: Any) -> Any:
        model = cls.retrieve_model(**kwargs)
        if model is None:
            raise TrainingError("MetricCreator: pass model=, model_id= or model_kwargs=")
        metric = cls.retrieve_from_registry(registered_name)(**_own(kwargs))
        metric.add_model(model)
        metric.add_dataset(cls.retrieve_dataset(**kwargs))
        if strict:
            metric.score()
        return metric


_DEPENDENCY_KEYS = {
    "dataset", "dataset_id", "dataset_kwargs", "pipeline", "pipeline_id", "pipeline_kwargs",
    "model", "model_id", "model_kwargs", "registered_name", "strict",
}  # fmt: skip


def _own(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor's own keywords (without the dependency references)."""
    return {k: v for k, v in kwargs.items() if k not in _DEPENDENCY_KEYS}
