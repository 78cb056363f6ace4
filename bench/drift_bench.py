"""Drift: keel's profiles and tests vs Evidently's ``DataDriftPreset`` on the same data.

Issue 22's measurement. :mod:`bench.drift_data` writes a seeded reference (``--rows``,
default 1,000,000) and a current window (a tenth of it) of ``--columns`` columns (default
100: 70 numbers of varied shapes, 30 categories of 3-50 levels) as parquet, with a known set of
columns drifted clearly, slightly (near the 0.1 thresholds) or not at all. Then:

* **keel**, in this process: *cold* = read both parquet files, ``profile_frame`` of each
  (``ProfileSettings()``), ``compare`` (median of ``--repeat`` runs, after one warm-up on a
  few rows that imports what the tests need); *repeated* = the reference profile already
  stored (``Profile.from_bytes`` of its bytes) + ``profile_frame`` of the current frame
  (already read) + ``compare``.
* **Evidently 0.7.23**, in a venv of its own (``.venv-evidently``, built on first use from
  ``bench/evidently-requirements.txt``, or ``make bench-evidently-venv``; keel's venv cannot
  hold it: it pins ``plotly<6``): :mod:`bench.drift_evidently` reads the same files, runs
  the preset once cold (read + report) and twice more on the frames in memory (Evidently
  keeps no statistics of a reference between reports: that is its repeated check at best).
  Both tools are told the same column types.

Reported: the share of features where the two verdicts differ (target ≤ 1%, each
disagreement listed with both statistics), each tool's wrong verdicts on the columns drifted
clearly or not at all (a keel mistake there is a wrong answer: exit status 1), cold and
repeated times (targets: keel ≥ 2× faster cold, ≥ 10× repeated), the reference profile's
size next to the reference parquet file's, and the cost of live profiling in ``keel serve``:
the serving benchmark's project and closed-loop load (:mod:`bench.serving_bench`,
:mod:`bench.loadgen`), served with ``api.record_invokes: true`` and ``monitoring:
{enabled: false}`` or the default (monitoring on), rounds alternating, server CPU time per
request compared (target: ≤ 5% more with monitoring on). Each of those runs lasts at least
``monitoring.flush_s`` (30 s), so that it includes the live profile's periodic store.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.drift_data import ColumnSpec, read_spec, write
from bench.report import Measure, Report
from bench.venvs import peer_python

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "bench" / "evidently-requirements.txt"
SCRIPT = REPO / "bench" / "drift_evidently.py"
#: where Evidently's venv is (``BENCH_EVIDENTLY_VENV`` overrides)
DEFAULT_VENV = REPO / ".venv-evidently"
EVIDENTLY_RUNS = 2  # repeated Evidently reports on the loaded frames
EVIDENTLY_TIMEOUT = 4 * 3600.0
AGREEMENT_TARGET = 0.99
COLD_TARGET, REPEATED_TARGET = 2.0, 10.0
RECORDING_TARGET = 0.05
FLUSH_SECONDS = 30.0  # keel's default monitoring.flush_s: a recording run lasts at least this


class EvidentlyUnavailable(RuntimeError):
    """Evidently's venv is missing and was not (or could not be) built."""


def evidently_venv() -> Path:
    return Path(os.environ.get("BENCH_EVIDENTLY_VENV") or DEFAULT_VENV)


def evidently_python(console: Console | None = None, create: bool = True) -> Path:
    """The python of Evidently's venv, built first if it is missing or out of date
    (``make bench-evidently-venv`` builds the same venv)."""
    return peer_python(
        evidently_venv(),
        REQUIREMENTS,
        what="Evidently",
        console=console,
        create=create,
        hint="make bench-evidently-venv (or run python -m bench --only drift, which builds it)",
        error=EvidentlyUnavailable,
    )


# --- keel's side ------------------------------------------------------------------------------


@dataclass
class KeelSide:
    """keel's timings (seconds) and verdicts."""

    cold: list[float] = field(default_factory=list)
    repeated: list[float] = field(default_factory=list)
    # parts of the cold runs (medians): read, profile reference, profile current, compare
    parts: dict[str, float] = field(default_factory=dict)
    profile_bytes: int = 0
    report: Any = None  # keel.monitoring.drift.DriftReport of the last cold run


def kinds_of(specs: list[ColumnSpec]) -> dict[str, dict[str, str]]:
    return {"input": {s.name: s.kind for s in specs}}


def keel_side(
    reference_path: Path, current_path: Path, specs: list[ColumnSpec], times: int
) -> KeelSide:
    """Time keel's cold and repeated checks ``times`` times each (see the module docstring)."""
    import pandas as pd

    from keel.monitoring.drift import compare
    from keel.monitoring.profiles import Profile, ProfileSettings, profile_frame

    kinds = kinds_of(specs)
    settings = ProfileSettings()
    # warm-up: the imports the tests make on first use (scipy.stats) are not a check's cost,
    # as Evidently's imports are not timed either
    few = pd.read_parquet(current_path).head(2_000)
    compare(profile_frame(few, kinds=kinds), profile_frame(few, kinds=kinds))
    del few

    side = KeelSide()
    parts: dict[str, list[float]] = {"read": [], "reference": [], "current": [], "compare": []}
    stored = b""
    current = None
    for _ in range(times):
        gc.collect()
        t0 = time.perf_counter()
        reference = pd.read_parquet(reference_path)
        current = pd.read_parquet(current_path)
        t1 = time.perf_counter()
        reference_profile = profile_frame(reference, kinds=kinds, settings=settings)
        t2 = time.perf_counter()
        current_profile = profile_frame(current, kinds=kinds, settings=settings)
        t3 = time.perf_counter()
        side.report = compare(reference_profile, current_profile)
        t4 = time.perf_counter()
        side.cold.append(t4 - t0)
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name].append(seconds)
        stored = reference_profile.to_bytes()
        del reference, reference_profile, current_profile
    side.parts = {name: statistics.median(values) for name, values in parts.items()}
    side.profile_bytes = len(stored)
    for _ in range(times):
        gc.collect()
        t0 = time.perf_counter()
        reference_profile = Profile.from_bytes(stored)
        current_profile = profile_frame(current, kinds=kinds, settings=settings)
        compare(reference_profile, current_profile)
        side.repeated.append(time.perf_counter() - t0)
    return side


# --- Evidently's side -------------------------------------------------------------------------


def evidently_side(
    python: Path, reference_path: Path, current_path: Path, spec_path: Path, runs: int
) -> dict[str, Any]:
    """Run :mod:`bench.drift_evidently` in Evidently's venv; its JSON answer."""
    done = subprocess.run(
        [str(python), str(SCRIPT), str(reference_path), str(current_path), str(spec_path),
         "--repeat", str(runs)],
        capture_output=True,
        text=True,
        timeout=EVIDENTLY_TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "DO_NOT_TRACK": "1"},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"Evidently's run failed: {(done.stderr or done.stdout)[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- verdicts -----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One feature as each tool judged it, and how it was made to drift."""

    spec: ColumnSpec
    keel_test: str
    keel_statistic: float | None
    keel_drifted: bool
    evidently_test: str | None = None
    evidently_statistic: float | None = None
    evidently_drifted: bool | None = None

    @property
    def agree(self) -> bool | None:
        return (
            None if self.evidently_drifted is None else self.keel_drifted == self.evidently_drifted
        )

    def wrong(self, drifted: bool | None) -> bool:
        """Whether ``drifted`` contradicts the designed drift (``slight`` is never wrong)."""
        if drifted is None or self.spec.drift == "slight":
            return False
        return drifted != (self.spec.drift == "clear")

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.spec.drift,
            "designed": self.spec.statistic,
            "how": self.spec.how,
            "keel": [self.keel_test, self.keel_statistic, self.keel_drifted],
            "evidently": [self.evidently_test, self.evidently_statistic, self.evidently_drifted],
        }


def verdicts(
    specs: list[ColumnSpec], keel_report: Any, evidently: dict[str, Any] | None
) -> list[Verdict]:
    by_name = {c.name: c for c in keel_report.features}
    out = []
    for spec in specs:
        mine = by_name[spec.name]
        theirs = (evidently or {}).get("columns", {}).get(spec.name) or {}
        out.append(
            Verdict(
                spec,
                mine.test,
                mine.statistic,
                mine.drifted,
                theirs.get("test"),
                theirs.get("statistic"),
                theirs.get("drifted"),
            )
        )
    return out


def _stat(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_verdicts(rows: list[Verdict], console: Console) -> None:
    shown = [
        r for r in rows if r.agree is False or r.spec.drift == "slight" or r.wrong(r.keel_drifted)
    ]
    table = Table(
        title="Drift: columns drifted slightly, and every column where a verdict differs",
        caption="designed: the drift the data was made with (normalised Wasserstein or "
        "Jensen-Shannon distance; threshold 0.1); ✗: the verdicts differ",
    )
    for column in ("column", "made", "designed", "keel test", "keel", "Evidently", ""):
        table.add_column(column, justify="left" if column in ("column", "made") else "right")
    for r in shown:
        table.add_row(
            r.spec.name,
            r.spec.drift,
            f"{r.spec.statistic:.3f}",
            r.keel_test
            + ("" if r.evidently_test in (None, r.keel_test) else f" ≠ {r.evidently_test}"),
            f"{_stat(r.keel_statistic)} {'drift' if r.keel_drifted else 'ok'}",
            "-"
            if r.evidently_drifted is None
            else f"{_stat(r.evidently_statistic)} {'drift' if r.evidently_drifted else 'ok'}",
            "[red]✗[/red]" if r.agree is False else "",
        )
    console.print(table)


def statistic_gaps(rows: list[Verdict]) -> dict[str, dict[str, float]]:
    """Per test: the median and largest |keel − Evidently| of the statistic."""
    gaps: dict[str, list[float]] = {}
    for r in rows:
        if r.keel_test == r.evidently_test and None not in (
            r.keel_statistic,
            r.evidently_statistic,
        ):
            gaps.setdefault(r.keel_test, []).append(
                abs(float(r.keel_statistic) - float(r.evidently_statistic))  # type: ignore[arg-type]
            )
    return {
        test: {"columns": len(v), "median": statistics.median(v), "max": max(v)}
        for test, v in sorted(gaps.items())
    }


# --- recording cost in keel serve -------------------------------------------------------------


def fold_cost(batch: int = 1_000, times: int = 20) -> float:
    """CPU µs per record that the recording server's writer thread spends folding records
    into live profiles (:func:`keel.monitoring.live.fold`), in this process, for records like
    the serving benchmark's (four numbers in, one label out), ``batch`` at a time (the
    recorder's default ``record_batch_size``). Steadier than the servers' difference, which
    this machine's noise can hide."""
    from bench import serving_bench as sb
    from keel.entities import InvocationRecord
    from keel.monitoring.live import fold
    from keel.monitoring.profiles import ProfileSettings

    now = int(time.time() * 1000)
    records = [
        InvocationRecord(f"r{i}", "bench", 1, now + i, 0.5 + i % 7 / 10, "ok", "species",
                         dict(sb.ROW), sb.EXPECTED)
        for i in range(batch)
    ]  # fmt: skip
    kinds = {"input": {name: "number" for name in sb.ROW}, "output": {"result": "category"}}
    profiles: dict[int, Any] = {}
    settings = ProfileSettings()
    fold(profiles, records, 3600, kinds, settings, "live")  # the first fold makes the sketches
    started = time.process_time()
    for _ in range(times):
        fold(profiles, records, 3600, kinds, settings, "live")
    return (time.process_time() - started) / times / batch * 1e6


def recording_cost(
    root: Path, console: Console, seconds: float, rounds: int
) -> dict[str, list[float]]:
    """Server CPU µs per request of ``keel serve`` recording, monitoring off and on, per round
    (the serving benchmark's project, warm-up and closed-loop peak load)."""
    from bench import serving_bench as sb

    why_not = sb.keel_serve_available()
    if why_not is not None:
        raise RuntimeError(f"keel serve is not available: {why_not}")
    folder = root / "drift-serving"
    folder.mkdir(parents=True, exist_ok=True)
    project = folder / "keel-project"
    sb._keel_train(project)  # monitoring on (the default): the version gets a reference profile
    config = project / "keel.yml"
    base = sb._keel_config(project, batching=True, recording=True)
    texts = {"off": base + "monitoring: {enabled: false}\n", "on": base}
    server_cpus, client_cpus = sb._cpus(1)
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for number in range(rounds):
        order = ["off", "on"] if number % 2 == 0 else ["on", "off"]
        for mode in order:
            port = sb.free_port()
            variant = sb._keel(project, f"keel-monitoring-{mode}", batching=True, recording=True)(
                folder, None, port, 1
            )
            text = texts[mode]
            variant.prepare = lambda text=text: config.write_text(text)
            variant.prepare()
            server = sb.Server(
                variant, port, folder / f"monitoring-{mode}-{number}.log", server_cpus
            )
            try:
                server.wait_ready()
                url = None
                for path in variant.paths:
                    status, body = sb.post(server.url(path), variant.body)
                    if 200 <= status < 300 and sb.EXPECTED in body:
                        url = server.url(path)
                        break
                if url is None:
                    raise RuntimeError(f"keel serve (monitoring {mode}) gave no right answer")
                sb.loadgen(url, variant.body, sb.WARMUP_SECONDS, client_cpus)
                before = server.cpu_seconds()
                peak = sb.loadgen(url, variant.body, seconds, client_cpus)
                after = server.cpu_seconds()
                if peak["errors"]:
                    raise RuntimeError(
                        f"keel serve (monitoring {mode}): {peak['errors']} errors of "
                        f"{peak['requests']}: {peak['first_error']}"
                    )
                if before is None or after is None or not peak["ok"]:
                    raise RuntimeError("server CPU time cannot be read here (no /proc)")
                cpu[mode].append((after - before) / peak["ok"] * 1e6)
                console.print(
                    f"[dim]drift, recording round {number + 1}, monitoring {mode}: "
                    f"{peak['rps']:,.0f} req/s, server CPU {cpu[mode][-1]:.0f} µs/req[/dim]"
                )
            finally:
                server.stop()
    return cpu


# --- the benchmark ------------------------------------------------------------------------------


def run(
    root: Path,
    report: Report,
    console: Console,
    rows: int,
    columns: int,
    seed: int,
    repeat: int,
    rounds: int = 3,
    seconds: float = FLUSH_SECONDS,
    current_rows: int | None = None,
    recording: bool = True,
    evidently: bool = True,
) -> list[Verdict]:
    """The whole drift benchmark; its rows go into ``report``. ``evidently=False`` and
    ``recording=False`` leave those parts out (the tests use them)."""
    current_rows = current_rows or max(1, rows // 10)
    folder = root / "drift"
    started = time.perf_counter()
    reference_path, current_path, spec_path = write(folder, rows, current_rows, columns, seed)
    _spec, specs = read_spec(spec_path)
    console.print(
        f"[dim]drift: {rows:,} + {current_rows:,} rows × {columns} columns written in "
        f"{time.perf_counter() - started:.1f} s ({reference_path.stat().st_size / 1e6:,.0f} MB "
        "reference parquet)[/dim]"
    )

    keel = keel_side(reference_path, current_path, specs, repeat)
    gc.collect()
    console.print(
        f"[dim]drift, keel: cold {statistics.median(keel.cold):.2f} s (read "
        f"{keel.parts['read']:.2f}, profile reference {keel.parts['reference']:.2f}, current "
        f"{keel.parts['current']:.2f}, compare {keel.parts['compare']:.2f}); repeated "
        f"{statistics.median(keel.repeated):.2f} s[/dim]"
    )

    answer: dict[str, Any] | None = None
    if evidently:
        try:
            python = evidently_python(console)
            answer = evidently_side(python, reference_path, current_path, spec_path, EVIDENTLY_RUNS)
            console.print(
                f"[dim]drift, Evidently {answer['evidently']}: cold {answer['cold_seconds']:.2f} s "
                f"(read {answer['read_seconds']:.2f}); repeated "
                + ", ".join(f"{s:.2f}" for s in answer["repeated_seconds"])
                + f" s; import {answer['import_seconds']:.1f} s[/dim]"
            )
        except (EvidentlyUnavailable, RuntimeError, subprocess.TimeoutExpired) as exc:
            report.problems.append(f"drift, Evidently: {exc}")

    rows_ = verdicts(specs, keel.report, answer)
    _print_verdicts(rows_, console)
    gaps = statistic_gaps(rows_)
    cpu: dict[str, list[float]] | None = None
    folding: float | None = None
    if recording:
        length = max(seconds, FLUSH_SECONDS)
        try:
            cpu = recording_cost(root, console, length, rounds)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            report.problems.append(f"drift, recording cost: {exc}")
        folding = fold_cost()
    _report(
        report, rows_, keel, answer, gaps, cpu, folding, reference_path, rows, current_rows,
        columns,
    )  # fmt: skip
    return rows_


def _report(
    report: Report,
    rows: list[Verdict],
    keel: KeelSide,
    answer: dict[str, Any] | None,
    gaps: dict[str, dict[str, float]],
    cpu: dict[str, list[float]] | None,
    folding: float | None,
    reference_path: Path,
    n_rows: int,
    current_rows: int,
    columns: int,
) -> None:
    peer = f"Evidently {answer['evidently']}" if answer else "Evidently"
    compared = [r for r in rows if r.agree is not None]
    differ = [r for r in compared if not r.agree]
    keel_wrong = [r.spec.name for r in rows if r.wrong(r.keel_drifted)]
    evidently_wrong = [r.spec.name for r in rows if r.wrong(r.evidently_drifted)]
    shape = f"{n_rows:,} reference rows, {current_rows:,} current, {columns} columns"
    report.details["drift"] = {
        "shape": {"reference_rows": n_rows, "current_rows": current_rows, "columns": columns},
        "keel": {
            "cold_seconds": keel.cold,
            "repeated_seconds": keel.repeated,
            "cold_parts_median": keel.parts,
            "profile_bytes": keel.profile_bytes,
            "drift_share": keel.report.drift_share,
            "drifted": keel.report.drifted,
        },
        "evidently": None
        if answer is None
        else {k: v for k, v in answer.items() if k != "columns"},
        "columns": {r.spec.name: r.as_dict() for r in rows},
        "disagreements": [r.spec.name for r in differ],
        "statistic_gaps": gaps,
        "recording_cpu_us": cpu,
        "fold_cpu_us_per_record": folding,
    }
    differ_text = "; ".join(
        f"{r.spec.name} ({r.spec.drift}, made {r.spec.statistic:g}): keel {r.keel_test} "
        f"{_stat(r.keel_statistic)} {'drift' if r.keel_drifted else 'ok'}, Evidently "
        f"{r.evidently_test} {_stat(r.evidently_statistic)} "
        f"{'drift' if r.evidently_drifted else 'ok'}"
        for r in differ
    )
    gap_text = ", ".join(
        f"{test} median {g['median']:.4f} max {g['max']:.4f} over {g['columns']}"
        for test, g in gaps.items()
    )
    report.add(
        Measure(
            name=f"drift verdicts differing from Evidently's (≤ {1 - AGREEMENT_TARGET:.0%})",
            unit="%",
            keel=100 * len(differ) / len(compared) if compared else None,
            mlflow=None,
            target=100 * (1 - AGREEMENT_TARGET),
            note=f"{shape}; {len(compared)} features compared, "
            f"{len(differ)} differ{': ' + differ_text if differ else ''}. "
            f"|keel − Evidently| of the statistic: {gap_text or '-'}",
            peer=peer,
        )
    )
    report.add(
        Measure(
            name="drift verdicts wrong on clearly drifted or unchanged columns",
            unit="cols",
            keel=float(len(keel_wrong)),
            mlflow=None if answer is None else float(len(evidently_wrong)),
            target=0.0,
            correct=not keel_wrong,
            note="columns made to drift clearly that were not flagged, or left unchanged that "
            f"were; keel: {', '.join(keel_wrong) or 'none'}; Evidently: "
            f"{', '.join(evidently_wrong) or 'none'} (columns drifted slightly are not counted)",
            peer=peer,
        )
    )
    cold = statistics.median(keel.cold)
    repeated = statistics.median(keel.repeated)
    ev_cold = answer["cold_seconds"] if answer else None
    ev_repeated = min(answer["repeated_seconds"]) if answer and answer["repeated_seconds"] else None
    report.add(
        Measure(
            name=f"drift check, cold (≥ {COLD_TARGET:g}x)",
            unit="s",
            keel=cold,
            mlflow=ev_cold,
            target=None if ev_cold is None else ev_cold / COLD_TARGET,
            note="read both parquet files + profile reference and current + compare (keel, "
            f"median of {len(keel.cold)}: read {keel.parts['read']:.2f} s, profile reference "
            f"{keel.parts['reference']:.2f} s, current {keel.parts['current']:.2f} s, compare "
            f"{keel.parts['compare']:.2f} s); Evidently: read + Dataset + Report.run("
            "DataDriftPreset), once"
            + (f" (its read: {answer['read_seconds']:.2f} s)" if answer else ""),
            peer=peer,
        )
    )
    report.add(
        Measure(
            name=f"drift check, repeated (≥ {REPEATED_TARGET:g}x)",
            unit="s",
            keel=repeated,
            mlflow=ev_repeated,
            target=None if ev_repeated is None else ev_repeated / REPEATED_TARGET,
            note="keel: Profile.from_bytes of the stored reference profile + profile of the "
            f"current frame + compare (median of {len(keel.repeated)}); Evidently: "
            "Report.run on the frames already in memory, the faster of "
            + (", ".join(f"{s:.1f} s" for s in answer["repeated_seconds"]) if answer else "-")
            + " (it keeps nothing of a reference between reports)",
            peer=peer,
        )
    )
    report.add(
        Measure(
            name="reference profile size",
            unit="KB",
            keel=keel.profile_bytes / 1e3,
            mlflow=reference_path.stat().st_size / 1e3,
            note=f"len(Profile.to_bytes()) of the {n_rows:,}-row reference vs its parquet file",
            peer="reference parquet",
        )
    )
    if cpu is not None and cpu["off"] and cpu["on"]:
        off, on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
        pairs = list(zip(cpu["off"], cpu["on"], strict=False))
        per_round = ", ".join(f"{a:.0f}/{b:.0f} ({b / a - 1:+.1%})" for a, b in pairs)
        paired = statistics.median(b / a - 1 for a, b in pairs)
        fold_text = (
            ""
            if folding is None
            else f"; folding records into live profiles, timed in-process: {folding:.1f} µs "
            f"per record ({folding / off:.1%} of the server's CPU per request, monitoring off)"
        )
        report.add(
            Measure(
                name=f"recording with monitoring on, server CPU (≤ +{RECORDING_TARGET:.0%})",
                unit="µs/req",
                keel=on,
                mlflow=off,
                target=off * (1 + RECORDING_TARGET),
                note="keel serve with api.record_invokes: true, monitoring on (default) vs "
                "monitoring: {enabled: false}; server CPU time per request under the serving "
                f"benchmark's closed-loop peak load, median of {len(cpu['on'])} rounds; per "
                f"round off/on: {per_round}; median of the rounds' changes {paired:+.1%}"
                + fold_text,
                peer="keel, monitoring off",
            )
        )
