"""Loading saved persistables."""

from keel.compat.simpleml.utils.scoring.load_persistable import PersistableLoader

__all__ = ["PersistableLoader"]
