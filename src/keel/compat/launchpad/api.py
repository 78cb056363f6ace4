"""ML Launchpad's ``mllaunchpad.api``: the API's base URL and RAML generated from data.

The prediction API itself is keel's (:mod:`keel.serving`), built from the config's ``api:``
section and its RAML file; :mod:`keel.compat.launchpad.wsgi` holds the application object.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["generate_raml", "get_api_base_url"]


def _major_version(config: dict[str, Any]) -> str:
    label = str(config["model"]["version"])
    match = re.match(r"\d+", label)
    if match is None:
        raise ConfigError(f"model:version {label!r}: expected x.y.z, e.g. 1.0.0")
    return f"v{match.group(0)}"


def get_api_base_url(config: dict[str, Any]) -> str:
    """``/<api name>/v<major of model:version>``, where the API's resources live."""
    return f"/{config['api']['name']}/{_major_version(config)}"


def generate_raml(
    complete_conf: dict[str, Any],
    data_source_name: str | None = None,
    data_frame: pd.DataFrame | None = None,
    resource_name: str = "mythings",
) -> str:
    """RAML for a resource whose query parameters are a data source's (or frame's) columns.

    Remove the target column from the result (or pass the frame without it), as
    ML Launchpad's tutorial says.
    """
    from keel.compat.launchpad.config import keel_config
    from keel.serving.raml import raml_from_frame

    if data_source_name is not None:
        from keel.data.catalog import DataCatalog

        with DataCatalog(keel_config(complete_conf)) as catalog:
            frame = catalog.source(data_source_name).get_dataframe()
    elif data_frame is not None:
        frame = data_frame
    else:
        raise ConfigError("generate_raml: give data_source_name or data_frame")
    api = complete_conf.get("api") or {}
    name = api.get("name") or complete_conf["model"]["name"]
    return raml_from_frame(
        frame, api_name=name, version=_major_version(complete_conf), resource=resource_name
    )
