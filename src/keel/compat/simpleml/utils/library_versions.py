"""The versions of the libraries a persistable was made with (``metadata_["library_versions"]``)."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

_PACKAGES = (
    "keel",
    "numpy",
    "pandas",
    "cloudpickle",
    "scikit-learn",
    "scipy",
    "joblib",
    "sqlalchemy",
)


def safe_lookup(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def installed_libraries() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": "{}.{}.{}".format(*sys.version_info[:3])}
    found.update({name: safe_lookup(name) for name in _PACKAGES})
    return found


INSTALLED_LIBRARIES: dict[str, str | None] = installed_libraries()
