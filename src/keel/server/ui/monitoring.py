"""The monitoring pages: a model version's drift from its training data, and the drift badges
of the models list (issue 22).

Route, under ``/projects/{project}`` (registered before :mod:`.models`, whose
``/models/{name}`` takes any path, so ``…/drift`` is matched here first):

* ``GET /models/{name}/v/{version}/drift?since=7d&window=1d``: the verdict over the period
  (does the dataset drift, the share of drifted features against the threshold), per column
  the test, its statistic, threshold and verdict with the missing shares and row counts, the
  reference and live distributions of each column overlaid, and a timeline per window of the
  drift share, record volume, error rate and latency. A version without a reference profile,
  or without live profiles in the period, gets a page saying how to make them.

:func:`drift_badges` gives the models list (:func:`keel.server.ui.models.models`) a badge per
model: its latest version's verdict over the last 7 days. It reads one listing of each
version's ``monitoring/`` files, computes a check only when a reference and a live window of
the period are there, and keeps the verdicts on the app (:class:`BadgeCache`), keyed by the
version and the content hashes of the files the verdict reads, so a reload computes nothing
again. One load spends at most ``BADGE_BUDGET_S`` computing; the rest show once cached.

Every verdict is :func:`keel.lifecycle.monitoring.check_version`'s, judged with the settings
stored in the reference profile (the server has no keel.yml). The figures are built by
:mod:`.drift_charts`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from keel.errors import InvalidInput, NotFound, NotInProject
from keel.monitoring.storage import LIVE, REFERENCE
from keel.server.guard import GuardedRoute
from keel.server.ui import missing_page, render
from keel.server.ui.common import PROJECTS, VIEWER, project_client
from keel.server.ui.formatting import path_part, project_url

if TYPE_CHECKING:
    from keel.entities import ArtifactFile
    from keel.monitoring.check import DriftCheck
    from keel.monitoring.drift import ColumnDrift
    from keel.tracking.client import Client

log = logging.getLogger("keel.server.ui")

router = APIRouter(
    route_class=GuardedRoute, prefix=PROJECTS + "/{project}", include_in_schema=False
)

#: column charts one page draws (drifted columns first); the table lists every column
MAX_COLUMN_CHARTS = 40
#: bins of a number column's chart
BINS = 20
#: the period of the models list's badges
BADGE_SINCE = "7d"
BADGE_SINCE_MS = 7 * 86_400_000
#: models of one list that get a badge (the list shows up to 1,000)
MAX_BADGES = 200
#: a badge is computed again after this long even if no file changed: the period moves
BADGE_TTL_S = 3600.0
#: seconds one load of the list spends computing badges; past it, only cached ones show
BADGE_BUDGET_S = 3.0
#: verdicts kept on the app
BADGE_CACHE_SIZE = 2048

_MONITORING = "monitoring"
#: a stored live profile: LIVE/<window_s>/<start_ms>/<writer>.kprof (storage.live_path)
_LIVE_FILE = re.compile(rf"^{re.escape(LIVE)}/(\d+)/(\d+)/[^/]+\.kprof$")
_cache_lock = threading.Lock()


# --- the drift page ---------------------------------------------------------------------------


@router.get(
    "/models/{name:path}/v/{version:int}/drift",
    response_class=HTMLResponse,
    dependencies=[VIEWER],
)
def drift_page(
    request: Request,
    project: str,
    name: str,
    version: int,
    since: str = Query("7d", max_length=32),
    window: str = Query("1d", max_length=32),
) -> Response:
    from keel.monitoring.check import parse_duration

    client = project_client(request, project)
    try:
        mv = client.get_model_version((name, version))
    except NotInProject as exc:
        path = f"/models/{path_part(name)}/v/{version}/drift"
        return missing_page(request, str(exc), [(p, project_url(p, path)) for p in exc.elsewhere])
    page: dict[str, Any] = {
        "mv": mv,
        "project": client.project,
        "since": since,
        "window": window,
        "error": None,
        "stored": None,
        "check": None,
    }
    try:  # a bad period is the visitor's to fix: say so above the form, not a 500
        parse_duration(since, "since")
        parse_duration(window, "window")
    except InvalidInput as exc:
        return render(request, "drift.html", status=422, **page | {"error": _one_line(exc)})
    stored = Stored.of(client.list_version_files(mv, _MONITORING))
    page["stored"] = stored
    if not stored.reference:
        return render(request, "drift.html", **page)
    from keel.lifecycle.monitoring import check_version

    try:
        check = check_version(client, (mv.model, mv.version), since=since, window=window)
    except InvalidInput as exc:  # too many windows or stored profiles for one check
        return render(request, "drift.html", status=422, **page | {"error": _one_line(exc)})
    except NotFound:  # the reference went away since the listing above
        return render(request, "drift.html", **page | {"stored": Stored(False, [])})
    return render(request, "drift.html", **page | _drift_context(check, stored, window))


@dataclass(frozen=True)
class Stored:
    """What a version's ``monitoring/`` files hold: a reference, and which live windows."""

    reference: bool
    windows: list[tuple[int, int]]  # (start_ms, end_ms) of each stored live profile

    @classmethod
    def of(cls, files: Sequence[ArtifactFile]) -> Stored:
        windows = [w for w in map(_live_window, files) if w is not None]
        return cls(any(f.path == REFERENCE for f in files), sorted(windows))

    def live_since(self, since_ms: int) -> bool:
        return any(end > since_ms for _, end in self.windows)

    @property
    def newest_ms(self) -> int | None:
        """The start of the newest stored live window."""
        return self.windows[-1][0] if self.windows else None


def _live_window(file: ArtifactFile) -> tuple[int, int] | None:
    """(start_ms, end_ms) of a stored live profile; None for any other file."""
    match = _LIVE_FILE.match(file.path)
    if match is None:
        return None
    start = int(match[2])
    return start, start + int(match[1]) * 1000


def _live_after(file: ArtifactFile, since_ms: int) -> bool:
    """Whether ``file`` is a live profile of a window ending after ``since_ms``."""
    window = _live_window(file)
    return window is not None and window[1] > since_ms


@dataclass(frozen=True)
class ColumnChart:
    """One column's overlaid distributions, as the page draws it."""

    name: str
    role: str
    drifted: bool
    figure: dict[str, Any]


def _drift_context(check: DriftCheck, stored: Stored, window: str) -> dict[str, Any]:
    from keel.monitoring.check import histograms_of
    from keel.server.ui.drift_charts import column_figure, timeline_figure

    report = check.report
    if not check.windows:
        return {"check": check, "further": _further(check, stored, window)}
    histograms = histograms_of(check.reference, check.current, BINS)
    # drifted columns first: with many columns, those are the charts worth drawing
    ordered = sorted(report.columns, key=lambda c: not c.drifted)
    charts = []
    for column in ordered:
        histogram = histograms.get(_histogram_key(column))
        if histogram is None:
            continue
        if len(charts) == MAX_COLUMN_CHARTS:
            break
        charts.append(
            ColumnChart(
                column.name,
                column.role,
                column.drifted,
                column_figure(_chart_title(column), histogram),
            )
        )
    features = report.features
    return {
        "check": check,
        "report": report,
        "compared": [c for c in features if c.current_rows],
        "charts": charts,
        "charts_left": sum(_histogram_key(c) in histograms for c in report.columns) - len(charts),
        "timeline": timeline_figure(check.windows, check.window_s, report.share_threshold)
        if check.windows
        else None,
        "reference_source": check.reference.meta.get("source"),
    }


def _further(check: DriftCheck, stored: Stored, window: str) -> dict[str, str] | None:
    """The period (query of the page) reaching back to the newest stored live window, when
    the one asked for holds none."""
    import math

    from keel.monitoring.check import MAX_WINDOWS, parse_duration

    if stored.newest_ms is None or stored.newest_ms >= check.since_ms:
        return None
    days = max(1, math.ceil((check.until_ms - stored.newest_ms) / 86_400_000))
    # the same windows if that makes few enough timeline rows, else one a day
    fits = days * 86_400 / parse_duration(window) <= MAX_WINDOWS
    return {"since": f"{days}d", "window": window if fits else "1d"}


def _histogram_key(column: ColumnDrift) -> str:
    """The key :func:`keel.monitoring.check.histograms_of` gives a column."""
    return column.name if column.role == "input" else f"output:{column.name}"


def _chart_title(column: ColumnDrift) -> str:
    prefix = "" if column.role == "input" else "output "
    verdict = "drifted" if column.drifted else "no drift"
    return f"{prefix}{column.name} · {verdict}"


def _one_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- the badges of the models list ----------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """A model's drift badge: its latest version's verdict over the last 7 days."""

    model: str
    version: int
    drifted: bool
    drift_share: float
    share_threshold: float
    drifted_features: tuple[str, ...]
    compared: int  # input features with live values

    @property
    def text(self) -> str:
        return "drift" if self.drifted else "no drift"

    @property
    def css(self) -> str:
        return "drift" if self.drifted else "no-drift"

    @property
    def title(self) -> str:
        drifted = len(self.drifted_features)
        names = f": {', '.join(self.drifted_features)}" if drifted else ""
        return (
            f"v{self.version}, last {BADGE_SINCE}: {drifted} of {self.compared} features "
            f"drifted{names} (the model drifts at {self.share_threshold:.0%})"
        )


@dataclass
class BadgeCache:
    """Verdicts by (version id, the (path, sha256) of its monitoring files): a new live
    profile or reference is a new key; an entry also expires after ``ttl_s``, since the
    period it covers moves on. The oldest entries go beyond ``size``."""

    size: int = BADGE_CACHE_SIZE
    ttl_s: float = BADGE_TTL_S
    entries: OrderedDict[Hashable, tuple[float, Badge | None]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> tuple[bool, Badge | None]:
        """(found, badge): a verdict of ``None`` (nothing to show) is a hit too."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or time.monotonic() - entry[0] > self.ttl_s:
                return False, None
            self.entries.move_to_end(key)
            return True, entry[1]

    def put(self, key: Hashable, badge: Badge | None) -> None:
        with self.lock:
            self.entries[key] = (time.monotonic(), badge)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


def badge_cache(request: Request) -> BadgeCache:
    """The app's badge cache (made on first use)."""
    state = request.app.state
    with _cache_lock:
        cache = getattr(state, "ui_drift_badges", None)
        if cache is None:
            cache = state.ui_drift_badges = BadgeCache()
        return cache


def drift_badges(request: Request, client: Client, models: Sequence[Any]) -> dict[str, Badge]:
    """Badges by model name for the first ``MAX_BADGES`` of ``models`` (those whose latest
    version has a reference and a live profile in the last 7 days). A model whose badge fails
    is logged and shown without one: a badge never breaks the list."""
    latest = {m.name: m.latest_version for m in models[:MAX_BADGES] if m.latest_version}
    if not latest:
        return {}
    try:
        versions = _latest_versions(client, latest)
    except Exception:
        log.warning("no drift badges on the models list of %s", client.project, exc_info=True)
        return {}
    cache = badge_cache(request)
    badges: dict[str, Badge] = {}
    deadline = time.monotonic() + BADGE_BUDGET_S
    for mv in versions:
        try:
            badge = _badge(client, cache, mv, compute=time.monotonic() < deadline)
        except Exception:
            log.warning("no drift badge for %s v%s", mv.model, mv.version, exc_info=True)
            continue
        if badge is not None:
            badges[mv.model] = badge
    return badges


def _latest_versions(client: Client, latest: dict[str, int]) -> list[Any]:
    """The versions ``latest`` names (model → version), read in a few queries, not one each."""
    pairs = sorted(latest.items())
    found: list[Any] = []
    for i in range(0, len(pairs), 100):
        chunk = pairs[i : i + 100]
        query = {"$or": [{"model.name": name, "version": number} for name, number in chunk]}
        found.extend(client.find_model_versions(query, limit=len(chunk)))
    return found


def _badge(client: Client, cache: BadgeCache, mv: Any, compute: bool = True) -> Badge | None:
    """``mv``'s badge: from the cache, else computed (unless ``compute`` is off: the list's
    time for badges is spent)."""
    files = client.list_version_files(mv, _MONITORING)
    since_ms = int(time.time() * 1000) - BADGE_SINCE_MS
    stored = Stored.of(files)
    if not stored.reference or not stored.live_since(since_ms):
        return None  # nothing to judge: computing nothing
    # the files the verdict reads: the reference and the live windows of the period
    used = [f for f in files if f.path == REFERENCE or _live_after(f, since_ms)]
    key = (mv.id, tuple(sorted((f.path, f.sha256) for f in used)))
    hit, badge = cache.get(key)
    if hit or not compute:
        return badge
    from keel.lifecycle.monitoring import check_version

    try:
        check = check_version(client, (mv.model, mv.version), since=BADGE_SINCE, window=BADGE_SINCE)
    except Exception:
        cache.put(key, None)  # a broken profile: logged once, not on every reload
        raise
    report = check.report
    compared = [c for c in report.features if c.current_rows]
    badge = (
        Badge(
            model=mv.model,
            version=mv.version,
            drifted=report.drifted,
            drift_share=report.drift_share,
            share_threshold=report.share_threshold,
            drifted_features=tuple(report.drifted_features),
            compared=len(compared),
        )
        if compared
        else None  # live rows, but none of the features: no verdict to show
    )
    cache.put(key, badge)
    return badge
