"""A reference profile from frames the caller already holds, for versions registered without
``keel train`` (``client.log_model_version``): the inputs the model was trained on and,
optionally, its outputs on some of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.monitoring.profiles import Profile, ProfileSettings, profile_frame
from keel.monitoring.storage import save_reference

if TYPE_CHECKING:
    from keel.tracking.client import Client, VersionRef


def make_reference(
    client: Client,
    version: VersionRef,
    inputs: Any,
    outputs: Any = None,
    *,
    source: str = "frame",
    settings: ProfileSettings | None = None,
) -> Profile:
    """Profile ``inputs`` (a DataFrame of the model's features) and ``outputs`` (a DataFrame
    of its output fields, or None) and store the profile as ``version``'s reference.

    Example:
        >>> from keel.monitoring.reference import make_reference       # doctest: +SKIP
        >>> make_reference(keel.Client(), "churn@3", train_df[features], preds_df)
    """
    profile = profile_frame(inputs, outputs, settings=settings, meta={"source": source})
    save_reference(client, version, profile)
    return profile
