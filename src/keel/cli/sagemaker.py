"""``keel sagemaker …``: a model's way to AWS SageMaker with ML2P's verbs."""

from __future__ import annotations

from keel.cli import PrefixGroup, cli


@cli.group("sagemaker", cls=PrefixGroup)
def sagemaker() -> None:
    """Train and serve on AWS SageMaker: datasets, training jobs, models, endpoints."""
