"""SimpleML's persistables on keel: ``from simpleml.X import Y`` becomes
``from keel.compat.simpleml.X import Y``.

The package has SimpleML's layout (``constants``, ``utils``, ``persistables``,
``save_patterns``, ``datasets``, ``pipelines``, ``models``, ``metrics``, ``transformers``).
What SimpleML kept in its own database tables keel keeps as its own records
(:mod:`keel.compat.simpleml.records`): every ``save()`` is a tracked run whose tags hold
the persistable's identity (id, name, version, hash, registered name); a dataset is also a
keel dataset version, a model (with its pipeline) a keel model version that
``keel.load_model`` and ``keel serve`` can load, and a metric a metric on that version.
"""

from __future__ import annotations

__version__ = "0.7.0"  # the SimpleML API this package follows

__all__ = ["__version__"]
