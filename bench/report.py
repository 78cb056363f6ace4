"""What a benchmark run found: measures, populate timings, notes, and how they are shown."""

from __future__ import annotations

import json
import platform
import sqlite3
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Measure:
    """One row of the results table.

    Attributes:
        name: what was measured.
        unit: unit of ``keel`` and ``mlflow``.
        keel: keel's number (lower is better), None when not measured.
        mlflow: MLflow's number, None when not measured.
        target: the most keel may take, None when there is no target.
        correct: False when a system returned a wrong answer for this measure.
        note: how the number was taken.
    """

    name: str
    unit: str
    keel: float | None
    mlflow: float | None
    target: float | None = None
    correct: bool = True
    note: str = ""
    peer: str = "MLflow"  # who the ``mlflow`` number belongs to

    @property
    def ratio(self) -> float | None:
        """MLflow / keel: how many times faster keel is."""
        if self.keel is None or self.mlflow is None or self.keel <= 0:
            return None
        return self.mlflow / self.keel

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.keel is None:
            return None
        return self.correct and self.keel <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


@dataclass
class Report:
    """Everything one ``python -m bench`` run found."""

    config: dict[str, Any]
    measures: list[Measure] = field(default_factory=list)
    populate: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, measure: Measure) -> None:
        self.measures.append(measure)

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "versions": versions(),
            "measures": [m.as_dict() for m in self.measures],
            "populate": self.populate,
            "notes": self.notes,
            "problems": self.problems,
            "details": self.details,
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n")

    def print(self, console: Console) -> None:
        if self.populate:
            console.print(self._populate_table())
        console.print(self._results_table())
        for number, m in enumerate((m for m in self.measures if m.note), start=1):
            console.print(f"[dim]\\[{number}] {m.note}[/dim]")
        for note in self.notes:
            console.print(f"[dim]• {note}[/dim]")
        for problem in self.problems:
            console.print(f"[bold red]✗ {problem}[/bold red]")

    def _populate_table(self) -> Table:
        table = Table(title="Populate (bulk SQL inserts, not part of any measure)")
        for column in ("system", "runs", "rows", "seconds", "rows/s", "database"):
            table.add_column(column, justify="left" if column == "system" else "right")
        for system, info in self.populate.items():
            table.add_row(
                system,
                f"{info['runs']:,}",
                f"{info['rows']:,}",
                f"{info['seconds']:.1f}",
                f"{info['rows'] / info['seconds']:,.0f}" if info["seconds"] else "-",
                f"{info['db_bytes'] / 1e6:,.0f} MB",
            )
        return table

    def _results_table(self) -> Table:
        v = versions()
        table = Table(
            title=f"keel {v['keel']} vs MLflow {v['mlflow']} (SQLite {v['sqlite']}, "
            f"Python {v['python']})",
            caption="peer: MLflow for tracking, plain pandas for data reads; "
            "ratio = peer / keel (above 1: keel is faster); targets apply to keel",
        )
        table.add_column("measure")
        table.add_column("keel", justify="right")
        table.add_column("peer", justify="right")
        table.add_column("ratio", justify="right")
        table.add_column("target", justify="right")
        table.add_column("", justify="center")
        footnote = 0
        for m in self.measures:
            name = m.name
            if m.note:
                footnote += 1
                name = f"{name} [dim]\\[{footnote}][/dim]"
            mark = {True: "[green]✓ pass[/green]", False: "[red]✗ fail[/red]", None: ""}[m.passed]
            if not m.correct:
                mark = "[bold red]✗ WRONG ANSWER[/bold red]"
            table.add_row(
                name,
                _fmt(m.keel, m.unit),
                f"{_fmt(m.mlflow, m.unit)} ({m.peer})",
                "-" if m.ratio is None else f"{m.ratio:,.1f}x",
                "-" if m.target is None else f"≤ {_fmt(m.target, m.unit)}",
                mark,
            )
        return table


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 1:
        return f"{value:,.2f} {unit}"
    return f"{value:.3f} {unit}"


def versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    mlflow = version("mlflow")
    if mlflow == "not installed":  # mlflow-skinny alone is enough for the benchmark
        mlflow = version("mlflow-skinny")
    return {
        "keel": version("keel"),
        "mlflow": mlflow,
        "sqlalchemy": version("SQLAlchemy"),
        "sqlite": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
