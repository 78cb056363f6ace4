"""``keel generate-dataset``: run the model's dataset generator and register the result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from keel.errors import InvalidInput
from keel.lifecycle.project import Project
from keel.lifecycle.runs import scratch, tracked_run
from keel.lifecycle.tracker import RunTracker
from keel.models.report import tracking

if TYPE_CHECKING:
    from keel.config import Config
    from keel.tracking.client import Client
    from keel.tracking.handles import DatasetApi


def generate_dataset(
    config: Config | str | os.PathLike[str] | None = None,
    name: str | None = None,
    *,
    client: Client | None = None,
) -> DatasetApi:
    """Run ``generate_dataset`` with the ``dataset`` data sources; register what it wrote to
    ``ctx.dataset_dir`` (or the DataFrame it returned, as ``data.parquet``) as the next
    version of dataset ``name`` (default: the model's name). Identical content returns the
    existing version."""
    import pandas as pd

    project = Project.open(config, client)
    try:
        dataset_name = name or project.name
        model = project.model_code()
        tags = {"model": project.name, "dataset": dataset_name}
        title = f"dataset {dataset_name}"
        with scratch("dataset") as work, tracked_run(project, "dataset", title, tags) as run:
            folder = work / "dataset"
            folder.mkdir()
            tracker = RunTracker(run)
            ctx = project.context(
                "dataset", work / "tmp", work / "model", tracker, dataset_dir=folder, run_id=run.id
            )
            with tracking(tracker):
                made = model.generate_dataset(ctx)
            if isinstance(made, pd.DataFrame):
                made.to_parquet(folder / "data.parquet", index=False)
            elif isinstance(made, str | Path):
                folder = Path(made)
            if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
                raise InvalidInput(
                    "the dataset generator wrote no files: write them to ctx.dataset_dir "
                    "or return a DataFrame"
                )
            dataset = run.log_dataset(dataset_name, folder)
            run.set_tags({"dataset_version": dataset.version})
        return dataset
    finally:
        project.close()
