"""``PersistableLoader.load_<kind>(**filters)``: the newest saved persistable matching
``filters`` (``name``, ``version``, ``id``, ``registered_name``, ``hash_``, ``model_id`` …),
with a warning per library whose version differs from when it was saved."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("keel.compat.simpleml")


class PersistableLoader:
    @classmethod
    def load_persistable(cls, kind: str, filters: dict[str, Any]) -> Any:
        from keel.compat.simpleml import records

        persistable = records.load(kind, filters, load_externals=False)
        cls.validate_environment(persistable)
        return persistable

    @classmethod
    def load_dataset(cls, **filters: Any) -> Any:
        return cls.load_persistable("DATASET", filters)

    @classmethod
    def load_pipeline(cls, **filters: Any) -> Any:
        return cls.load_persistable("PIPELINE", filters)

    @classmethod
    def load_model(cls, **filters: Any) -> Any:
        return cls.load_persistable("MODEL", filters)

    @classmethod
    def load_metric(cls, **filters: Any) -> Any:
        return cls.load_persistable("METRIC", filters)

    @staticmethod
    def validate_environment(persistable: Any) -> list[dict[str, Any]]:
        from keel.compat.simpleml.utils.library_versions import INSTALLED_LIBRARIES

        mismatches = [
            {
                "package": package,
                "expected_version": saved,
                "version": INSTALLED_LIBRARIES.get(package),
            }
            for package, saved in persistable.library_versions.items()
            if INSTALLED_LIBRARIES.get(package) != saved
        ]
        for mismatch in mismatches:
            log.warning(
                "%s %r was saved with %s==%s, found %s here",
                persistable.registered_name,
                persistable.name,
                mismatch["package"],
                mismatch["expected_version"],
                mismatch["version"],
            )
        return mismatches
