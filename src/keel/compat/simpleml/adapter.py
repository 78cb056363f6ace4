"""A saved SimpleML model as a keel model version that ``keel.load_model`` and ``keel serve``
load: the fitted pipeline and estimator together, predicting from raw rows.

``predict`` takes one row (a dict of the dataset's feature columns; missing ones are
missing values, as in the training frame) and returns ``{"prediction": …, "probabilities":
{class: p}}`` (probabilities for classifiers); a list of rows, or a batch, gives a list.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.models.base import Model as KeelModel
from keel.models.base import ModelContext

if TYPE_CHECKING:
    from keel.compat.simpleml.models.base_model import Model
    from keel.tracking.handles import ModelVersionApi, RunApi


@dataclass
class FittedSimpleml:
    """What a SimpleML model version predicts with."""

    pipeline: Any
    estimator: Any
    columns: list[str] = field(default_factory=list)
    registered_name: str = ""

    def frame(self, rows: list[dict[str, Any]]) -> Any:
        import pandas as pd

        for row in rows:
            if not isinstance(row, dict):
                raise InvalidInput(
                    f"a SimpleML model predicts from rows of named features, "
                    f"not {type(row).__name__}"
                )
        df = pd.DataFrame(rows)
        for column in self.columns:
            if column not in df.columns:
                df[column] = float("nan")
        return (
            df[[*self.columns, *[c for c in df.columns if c not in self.columns]]]
            if self.columns
            else df
        )

    def predict_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        X = self.pipeline.transform(self.frame(rows))
        predictions = self.estimator.predict(X)
        results: list[dict[str, Any]] = [{"prediction": _plain(p)} for p in predictions]
        if hasattr(self.estimator, "predict_proba"):
            try:
                probabilities = self.estimator.predict_proba(X)
            except AttributeError:  # e.g. an SVC without probability=True
                return results
            classes = [str(c) for c in self.estimator.classes_]
            for result, row in zip(results, probabilities, strict=True):
                result["probabilities"] = {c: float(p) for c, p in zip(classes, row, strict=True)}
        return results


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


class SimplemlModel(KeelModel):
    """The keel model of a SimpleML model version (trained by SimpleML code, not ``keel train``)."""

    style = "simpleml"

    def train(self, ctx: ModelContext) -> Any:
        raise InvalidInput(
            f"model {ctx.name} was made by SimpleML code: fit and save it there "
            "(model.fit(); model.save()), not with keel train"
        )

    def predict(self, ctx: ModelContext, fitted: FittedSimpleml, inputs: Any) -> Any:
        if isinstance(inputs, list):
            return fitted.predict_rows(inputs)
        return fitted.predict_rows([inputs])[0]

    def predict_batch(self, ctx: ModelContext, fitted: FittedSimpleml, batch: Any) -> Any:
        from keel.models.base import records

        return fitted.predict_rows(list(records(batch)))


def register_model_version(model: Model, run: RunApi) -> ModelVersionApi:
    """Write ``model`` (with its pipeline) as a keel model version from ``run``."""
    from keel.compat.simpleml import records
    from keel.lifecycle.artifact import FILES, Manifest

    pipeline = model.pipeline
    assert pipeline is not None  # save() checked
    dataset = pipeline.dataset
    client = records.session().client
    name = model.name or "default"
    fitted = FittedSimpleml(
        pipeline=pipeline.external_pipeline,
        estimator=model.external_model,
        columns=list(dataset.get_feature_names()) if dataset is not None else [],
        registered_name=model.registered_name,
    )
    lineage: dict[str, Any] = {
        "simpleml.id": str(model.id),
        "simpleml.hash": model.hash_,
        "simpleml.registered_name": model.registered_name,
        "simpleml.pipeline": f"{pipeline.name}@{pipeline.version} ({pipeline.registered_name})",
        "simpleml.pipeline_id": str(pipeline.id),
    }
    if dataset is not None:
        lineage["simpleml.dataset"] = (
            f"{dataset.name}@{dataset.version} ({dataset.registered_name})"
        )
        lineage["simpleml.dataset_id"] = str(dataset.id)
        if dataset.version is not None:
            run.use_dataset(client.get_dataset(dataset.name, dataset.version))
    staging = Path(tempfile.mkdtemp(prefix="keel-simpleml-model-"))
    try:
        folder = staging / name.replace("/", "_")
        (folder / FILES).mkdir(parents=True)
        manifest = Manifest(
            model=name,
            label=None,
            style=SimplemlModel.style,
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
            run_id=run.id,
            trained_at=time.time(),
            fitted=[],
            libraries={},
            model_conf={
                "name": name,
                "simpleml": {k.split(".", 1)[1]: v for k, v in lineage.items()},
            },
        )
        _write_files(folder, fitted, manifest)
        return client.log_model_version(
            name,
            run,
            folder,
            path_in_run="keel-model",
            allow_duplication=True,
            tags=lineage,
            description=model.version_description or "",
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_files(folder: Path, fitted: FittedSimpleml, manifest: Any) -> None:
    """keel's model files: the adapter (by reference), the fitted objects (the user's own
    modules in the working folder pickled by value, as ``keel train`` does), the manifest."""
    import json
    import sys

    import cloudpickle

    from keel.lifecycle.artifact import CODE, MANIFEST, code_by_value, project_modules
    from keel.models.formats import save_fitted
    from keel.models.libraries import libraries_in_use

    own = [
        m
        for m in project_modules(Path.cwd())
        if m != "keel"
        and not m.startswith("keel.")
        and "-packages" not in str(getattr(sys.modules.get(m), "__file__", "") or "")
    ]
    with (folder / CODE).open("wb") as handle:
        cloudpickle.dump(SimplemlModel(), handle)
    with code_by_value(own):
        manifest.fitted = save_fitted(fitted, folder, ["cloudpickle"])
    manifest.libraries = libraries_in_use()
    (folder / MANIFEST).write_text(
        json.dumps(manifest.to_json(), indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
