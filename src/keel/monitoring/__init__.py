"""Monitoring: how a served model's live inputs and outputs drift from its training data.

- :mod:`~keel.monitoring.profiles`: profiles as mergeable sketches (Apache DataSketches);
- :mod:`~keel.monitoring.records`: invocation records as input and output rows;
- :mod:`~keel.monitoring.live`: live per-window profiles built as records are stored;
- :mod:`~keel.monitoring.update`: the same, built afterwards from stored records;
- :mod:`~keel.monitoring.storage`: where profiles are kept (a version's own files);
- :mod:`~keel.monitoring.stattests` and :mod:`~keel.monitoring.drift`: tests and verdicts;
- :mod:`~keel.monitoring.check`: a version's drift over a period, per window;
- :mod:`~keel.monitoring.quality`: the model's metric once late labels arrive;
- :mod:`~keel.monitoring.reference`: a reference profile from frames in hand.

The reference profile of a version (its training data and its outputs on them) is made by
:mod:`keel.lifecycle.monitoring`, which can load and run the model.
"""
