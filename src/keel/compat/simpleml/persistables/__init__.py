"""SimpleML's persistable base class and its content hashing."""

from keel.compat.simpleml.persistables.base_persistable import Persistable

__all__ = ["Persistable"]
