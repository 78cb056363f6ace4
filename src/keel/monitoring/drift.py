"""Verdicts: which features and outputs drifted between a reference and a current profile.

Which test a column gets (Evidently's defaults unless keel.yml's ``monitoring:`` says
otherwise), its threshold, and the dataset's verdict (it drifts when at least
``drift_share`` of the compared input features drift) are keel's own; the tests themselves
are in :mod:`keel.monitoring.stattests`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.errors import InvalidInput
from keel.monitoring.profiles import ColumnProfile, Profile
from keel.monitoring.stattests import TESTS, auto_test


@dataclass(frozen=True)
class ChosenTest:
    test: str = "auto"
    threshold: float | None = None


@dataclass
class DriftSettings:
    """The drift part of keel.yml's ``monitoring:`` (defaults: Evidently's)."""

    small_reference_rows: int = 1_000
    drift_share: float = 0.5
    numeric: ChosenTest = field(default_factory=ChosenTest)
    categorical: ChosenTest = field(default_factory=ChosenTest)
    per_feature: dict[str, ChosenTest] = field(default_factory=dict)
    features: list[str] | None = None  # input columns compared (patterns allowed)
    exclude: list[str] = field(default_factory=list)
    outputs: bool = True

    @classmethod
    def from_section(cls, section: Any) -> DriftSettings:
        """From a :class:`keel.config.models.MonitoringSection`."""

        def choice(value: Any) -> ChosenTest:
            return ChosenTest() if value is None else ChosenTest(value.test, value.threshold)

        return cls(
            small_reference_rows=section.small_reference_rows,
            drift_share=section.drift_share,
            numeric=choice(section.numeric),
            categorical=choice(section.categorical),
            per_feature={k: choice(v) for k, v in section.per_feature.items()},
            features=section.features,
            exclude=list(section.exclude),
            outputs=section.outputs,
        )

    def choice_for(self, name: str, kind: str) -> ChosenTest:
        if name in self.per_feature:
            return self.per_feature[name]
        return self.numeric if kind == "number" else self.categorical

    def compared(self, names: Sequence[str]) -> list[str]:
        """The input columns compared: ``features`` (names or glob patterns) or all, less
        ``exclude``."""
        chosen = [
            n
            for n in names
            if self.features is None or any(fnmatch.fnmatchcase(n, p) for p in self.features)
        ]
        return [n for n in chosen if not any(fnmatch.fnmatchcase(n, p) for p in self.exclude)]


@dataclass
class ColumnDrift:
    """One column's verdict."""

    name: str
    role: str  # "input" or "output"
    kind: str
    test: str
    statistic: float | None  # a p-value or a distance (see ``p_value``); None: not computed
    threshold: float
    p_value: bool
    drifted: bool
    reference_rows: int
    current_rows: int
    reference_missing_share: float
    current_missing_share: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftReport:
    """The verdict for one reference and one current profile."""

    columns: list[ColumnDrift]
    drift_share: float  # share of compared input features that drifted
    share_threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    missing_features: list[str] = field(default_factory=list)  # in the reference, never live

    @property
    def features(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == "input"]

    @property
    def drifted_features(self) -> list[str]:
        return [c.name for c in self.features if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "drifted_features": self.drifted_features,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "missing_features": self.missing_features,
            "columns": [c.to_dict() for c in self.columns],
        }


def compare_column(
    name: str,
    role: str,
    ref: ColumnProfile,
    cur: ColumnProfile,
    settings: DriftSettings,
) -> ColumnDrift:
    """The verdict of one column (the test that fits, unless ``settings`` choose one)."""
    choice = settings.choice_for(name, ref.kind)
    test_name = choice.test
    if test_name == "auto":
        test_name = auto_test(ref, cur, settings.small_reference_rows)
    test = TESTS.get(test_name)
    if test is None:
        raise InvalidInput(f"unknown drift test {test_name!r}: one of {', '.join(TESTS)}")
    threshold = test.default_threshold if choice.threshold is None else choice.threshold
    note = ""
    if ref.kind not in test.kinds:
        note = f"{test_name} does not apply to a {ref.kind} column"
        statistic = math.nan
    elif cur.kind != ref.kind:
        note = f"the live values are {cur.kind}s, the reference's {ref.kind}s"
        statistic = math.nan
    elif not cur.count:
        note = "no live values"
        statistic = math.nan
    else:
        statistic = test.run(ref, cur)
    drifted = test.drifted(statistic, threshold) or cur.kind != ref.kind
    return ColumnDrift(
        name=name,
        role=role,
        kind=ref.kind,
        test=test_name,
        statistic=None if math.isnan(statistic) else round(statistic, 6),
        threshold=threshold,
        p_value=test.p_value,
        drifted=drifted,
        reference_rows=ref.count,
        current_rows=cur.count,
        reference_missing_share=round(ref.missing_share, 6),
        current_missing_share=round(cur.missing_share, 6),
        note=note,
    )


def compare(
    reference: Profile, current: Profile, settings: DriftSettings | None = None
) -> DriftReport:
    """Compare ``current`` with ``reference``, column by column, and judge the dataset."""
    settings = settings or DriftSettings()
    columns: list[ColumnDrift] = []
    missing: list[str] = []
    for name in settings.compared(sorted(reference.inputs)):
        ref = reference.inputs[name]
        cur = current.inputs.get(name)
        if cur is None:
            if current.rows:
                missing.append(name)
            cur = ColumnProfile(ref.kind, k=ref.k, max_categories=ref.max_categories)
            cur.missing = current.rows
        columns.append(compare_column(name, "input", ref, cur, settings))
    if settings.outputs:
        for name in sorted(reference.outputs.keys() & current.outputs.keys()):
            columns.append(
                compare_column(
                    name, "output", reference.outputs[name], current.outputs[name], settings
                )
            )
    features = [c for c in columns if c.role == "input" and c.current_rows]
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    return DriftReport(
        columns=columns,
        drift_share=round(share, 6),
        share_threshold=settings.drift_share,
        drifted=bool(features) and share >= settings.drift_share,
        reference_rows=reference.rows,
        current_rows=current.rows,
        missing_features=missing,
    )
