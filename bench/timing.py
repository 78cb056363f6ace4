"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timings:
    """Repeated wall-clock timings of one call, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def repeat(call: Callable[[], Any], times: int, warmup: int = 1) -> tuple[Timings, Any]:
    """Time ``call`` ``times`` times after ``warmup`` untimed calls; returns the timings and the
    last result. Garbage is collected before each timed call so one call's leftovers do not
    land on the next one."""
    result: Any = None
    for _ in range(warmup):
        result = call()
    samples = []
    for _ in range(times):
        gc.collect()
        start = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - start)
    return Timings(tuple(samples)), result
