"""SimpleML's constants: the names of the dataset splits."""

from __future__ import annotations

TRAIN_SPLIT: str = "TRAIN"
VALIDATION_SPLIT: str = "VALIDATION"
TEST_SPLIT: str = "TEST"


class SimpleMLConstants:
    """Class attributes for constants SimpleML code may reference (kept for imports)."""
