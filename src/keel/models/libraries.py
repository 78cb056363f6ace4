"""The library versions a model was trained with, and the check made when it is loaded."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from importlib import metadata


class LibraryVersionWarning(UserWarning):
    """A model is loaded with a different major or minor version of a library it used."""


def libraries_in_use() -> dict[str, str]:
    """Versions of the installed distributions whose modules are imported right now.

    Taken when a model is saved, this names what the model code actually used (numpy,
    scikit-learn, …) rather than everything installed.
    """
    providers = metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in list(sys.modules):
        top = module.partition(".")[0]
        for dist in providers.get(top, ()):
            if dist not in found:
                try:
                    found[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
    return dict(sorted(found.items()))


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_libraries(recorded: Mapping[str, str], what: str) -> list[str]:
    """Warn once per library whose major or minor version differs from training time."""
    differences: list[str] = []
    for dist, trained in sorted(recorded.items()):
        try:
            current = metadata.version(dist)
        except metadata.PackageNotFoundError:
            differences.append(f"{dist} {trained} (not installed now)")
            continue
        if _major_minor(current) != _major_minor(trained):
            differences.append(f"{dist} {trained} (now {current})")
    for difference in differences:
        warnings.warn(
            f"{what} was trained with {difference}; predictions may differ or loading may fail",
            LibraryVersionWarning,
            stacklevel=3,
        )
    return differences
