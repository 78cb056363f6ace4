"""``keel monitor drift``: a version's live profiles over a period, compared with its reference.

The stored live windows in the period are merged into report windows (``--window``) and
into one current profile; each is compared with the reference profile. Nothing here reads
an invocation record, so a month is a month of small profiles. Each report window also
carries what the serving side saw: record volume, error rate and latency quantiles, and,
when keel.yml has ``monitoring.labels``, the model's metric on the labelled records.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.drift import DriftReport, DriftSettings, compare
from keel.monitoring.profiles import Profile
from keel.monitoring.storage import load_reference, load_windows, window_files

if TYPE_CHECKING:
    from keel.tracking.client import Client, VersionRef

#: stored window profiles one check may read, and report windows it may make
MAX_FILES = 20_000
MAX_WINDOWS = 2_000
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """Seconds in ``7d``, ``1h``, ``30m``, ``90s``, ``500ms`` (text needs its unit; a
    number given as a number is seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidInput(
                f"{what} {text!r} is not a duration: write a number and a unit, e.g. 7d, "
                "12h, 30m, 90s"
            )
        seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise InvalidInput(f"{what} {text!r} must be longer than zero")
    return seconds


@dataclass
class WindowSummary:
    """One report window: its drift and what the serving side saw."""

    start_ms: int
    end_ms: int
    rows: int
    records: int
    errors: int
    latency_ms: dict[str, float]
    drift_share: float
    drifted: bool
    drifted_features: list[str]
    quality: dict[str, Any] | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.records if self.records else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start": _iso(self.start_ms),
            "rows": self.rows,
            "records": self.records,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "latency_ms": self.latency_ms,
            "drift_share": self.drift_share,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "quality": self.quality,
        }


@dataclass
class DriftCheck:
    """A drift check of one version over a period."""

    model: str
    version: int
    since_ms: int
    until_ms: int
    window_s: int
    report: DriftReport
    windows: list[WindowSummary]
    reference: Profile
    current: Profile
    settings: DriftSettings = field(default_factory=DriftSettings)

    @property
    def drifted(self) -> bool:
        return self.report.drifted

    def to_dict(self, histograms: bool = False, bins: int = 20) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "since": _iso(self.since_ms),
            "until": _iso(self.until_ms),
            "window_s": self.window_s,
            **self.report.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
        }
        if histograms:
            out["histograms"] = histograms_of(self.reference, self.current, bins)
        return out


def histograms_of(reference: Profile, current: Profile, bins: int = 20) -> dict[str, Any]:
    """Per column, the reference's and the current values' shares over the same bins
    (numbers) or values (categories), for plots that overlay the two."""
    out: dict[str, Any] = {}
    for role in ("input", "output"):
        for name, ref in sorted(reference.columns(role).items()):
            cur = current.columns(role).get(name)
            key = name if role == "input" else f"output:{name}"
            if ref.kind == "number" and ref.count:
                lo, hi = ref.kll.get_min_value(), ref.kll.get_max_value()
                if cur is not None and cur.kind == "number" and cur.count:
                    lo = min(lo, cur.kll.get_min_value())
                    hi = max(hi, cur.kll.get_max_value())
                if hi <= lo:
                    hi = lo + 1.0
                edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
                out[key] = {
                    "role": role,
                    "kind": "number",
                    "edges": edges,
                    "reference": ref.bin_shares(edges),
                    "current": cur.bin_shares(edges)
                    if cur is not None and cur.kind == "number"
                    else [],
                }
            elif ref.kind == "category":
                a = ref.frequencies() or {}
                b = (cur.frequencies() or {}) if cur is not None else {}
                top = sorted(a.keys() | b.keys(), key=lambda k: -(a.get(k, 0) + b.get(k, 0)))
                top = top[:30]
                ta, tb = sum(a.values()) or 1.0, sum(b.values()) or 1.0
                out[key] = {
                    "role": role,
                    "kind": "category",
                    "values": top,
                    "reference": [a.get(k, 0) / ta for k in top],
                    "current": [b.get(k, 0) / tb for k in top],
                }
    return out


def check_drift(
    client: Client,
    version: VersionRef,
    *,
    since: str | float = "7d",
    window: str | float | None = "1d",
    until_ms: int | None = None,
    settings: DriftSettings | None = None,
    labels: Any = None,
    reference: Profile | None = None,
    max_files: int = MAX_FILES,
) -> DriftCheck:
    """Compare the live profiles of the last ``since`` (ending at ``until_ms``, default now)
    with the version's reference profile, overall and per ``window``.

    ``labels`` (a :class:`keel.monitoring.quality.Labels`) adds the model's metric on the
    labelled records of each window. A period holding more than ``max_files`` stored
    window profiles is refused before any is read (ask for a shorter ``since``).
    """
    settings = settings or DriftSettings()
    mv = client.get_model_version(version)
    until = int(time.time() * 1000) if until_ms is None else int(until_ms)
    since_ms = until - int(parse_duration(since, "--since") * 1000)
    window_ms = int(parse_duration(window or since, "--window") * 1000)
    if reference is None:
        reference = load_reference(client, mv)
    files = window_files(client, mv, since_ms, until)
    if len(files) > max_files:
        raise InvalidInput(
            f"{len(files):,} window profiles of {mv.model} version {mv.version} lie in the last "
            f"{since}: more than the {max_files:,} one check reads; check a shorter period"
        )
    if (until - since_ms) // window_ms > MAX_WINDOWS:
        raise InvalidInput(
            f"the last {since} in windows of {window} makes over {MAX_WINDOWS:,} windows: "
            "choose a longer window"
        )
    loaded = load_windows(client, files)
    groups: dict[int, Profile] = {}
    sizes: dict[int, int] = {}
    for stored, profile in loaded:
        # a report window is at least one stored window: a stored hour is never split
        size = max(window_ms, stored.window_s * 1000)
        start = stored.start_ms // size * size  # report windows are aligned to the epoch
        groups[start] = groups[start].merge(profile) if start in groups else profile
        sizes[start] = max(sizes.get(start, 0), size)
    current = Profile(meta={"source": "live"})
    for profile in groups.values():
        current = current.merge(profile)
    report = compare(reference, current, settings)
    windows = []
    for start, profile in sorted(groups.items()):
        per = compare(reference, profile, settings)
        latency = {}
        if profile.latency is not None and profile.latency.count:
            p50, p95, p99 = profile.latency.kll.get_quantiles([0.5, 0.95, 0.99])
            latency = {"p50": round(p50, 3), "p95": round(p95, 3), "p99": round(p99, 3)}
        windows.append(
            WindowSummary(
                start_ms=start,
                end_ms=min(start + sizes[start], until),
                rows=profile.rows,
                records=profile.records,
                errors=profile.errors,
                latency_ms=latency,
                drift_share=per.drift_share,
                drifted=per.drifted,
                drifted_features=per.drifted_features,
            )
        )
    if labels is not None:
        from keel.monitoring.quality import quality_by_window

        scores = quality_by_window(client, mv, labels, [(w.start_ms, w.end_ms) for w in windows])
        for w in windows:
            w.quality = scores.get(w.start_ms)
    return DriftCheck(
        model=mv.model,
        version=mv.version,
        since_ms=since_ms,
        until_ms=until,
        window_s=window_ms // 1000,
        report=report,
        windows=windows,
        reference=reference,
        current=current,
        settings=settings,
    )


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
