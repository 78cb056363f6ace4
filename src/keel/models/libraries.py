"""The library versions a model was trained with, and the check made when it is loaded."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Mapping


class LibraryVersionWarning(UserWarning):
    """A model is loaded with a different major or minor version of a library it used."""


def _version_of(module: object) -> str | None:
    with warnings.catch_warnings():  # some libraries deprecate __version__ (markupsafe)
        warnings.simplefilter("ignore")
        version = getattr(module, "__version__", None)
    return version if isinstance(version, str) else None


def libraries_in_use() -> dict[str, str]:
    """``{module: version}`` of the imported third-party libraries (their ``__version__``).

    Taken when a model is saved, this names what the model code actually used (numpy,
    sklearn, …) rather than everything installed, and costs no scan of the installation.
    """
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name.startswith("_") or name in sys.stdlib_module_names:
            continue
        version = _version_of(module)
        if version is not None:
            found[name] = version
    return dict(sorted(found.items()))


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_libraries(recorded: Mapping[str, str], what: str) -> list[str]:
    """Warn once per library whose major or minor version differs from training time.

    Call it after the model is loaded: the libraries it needs are imported by then.
    Libraries neither imported nor installed are reported too.
    """
    differences: list[str] = []
    for name, trained in sorted(recorded.items()):
        module = sys.modules.get(name)
        if module is None:
            # keel's images hold what the version's pickles name, not every library its
            # training imported (KEEL_IMAGE is set in them): a missing one is left out on purpose
            if importlib.util.find_spec(name) is None and not os.environ.get("KEEL_IMAGE"):
                differences.append(f"{name} {trained} (not installed now)")
            continue
        current = _version_of(module)
        if current is not None and _major_minor(current) != _major_minor(trained):
            differences.append(f"{name} {trained} (now {current})")
    for difference in differences:
        warnings.warn(
            f"{what} was trained with {difference}; predictions may differ or loading may fail",
            LibraryVersionWarning,
            stacklevel=3,
        )
    return differences
