"""What the fuzz suites share: the example budget, Hypothesis' settings, schemathesis'
configuration, real records for path parameters, and the property every answer must have.

The property (:func:`call_and_check`): no answer is a 5xx; every refusal (4xx) is JSON with a
non-empty string ``message`` (keel's error format, FastAPI's own validation errors included);
every call answers within :data:`CALL_TIMEOUT_S` (the in-process transport cancels it then).

Two variables size a run: ``KEEL_FUZZ_EXAMPLES`` (fuzzing examples per operation; 15 in CI)
and ``KEEL_FUZZ_CALL_TIMEOUT_S`` (30). The longer run, a few minutes per 100 examples::

    KEEL_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/fuzz
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import hypothesis
from hypothesis import HealthCheck
from hypothesis import strategies as st

if TYPE_CHECKING:
    import schemathesis

#: examples per operation in the fuzzing phase (small in CI; a longer run raises it)
EXAMPLES = int(os.environ.get("KEEL_FUZZ_EXAMPLES", "15"))
#: the longest one call may take before it counts as a hang (generous: 2 shared cores)
CALL_TIMEOUT_S = float(os.environ.get("KEEL_FUZZ_CALL_TIMEOUT_S", "30"))

#: Reproducible: the same examples on every run, nothing remembered between runs. The health
#: checks left out only complain that generating or answering examples is slow.
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)


def schemathesis_config(headers: Mapping[str, str] | None = None) -> schemathesis.Config:
    """Examples, coverage and fuzzing phases, positive and negative cases, ``headers`` on
    every call; no ``schemathesis.toml`` is read.

    Constants are not harvested from keel's source: the examples would then change whenever
    any module changes, and a CI failure could not be replayed on another commit.
    """
    import schemathesis

    project: dict[str, Any] = {
        "generation": {"mode": "all", "max-examples": EXAMPLES},
        "phases": {"stateful": {"enabled": False}},
        "analysis": {"constants": {"enabled": False}},
        "request-timeout": CALL_TIMEOUT_S,
    }
    if headers:
        project["headers"] = dict(headers)
    return schemathesis.Config.from_dict(project)


def substitute_known(schema: schemathesis.BaseSchema, known: Mapping[str, Iterable[Any]]) -> None:
    """Let path parameters, query parameters and top-level body fields named in ``known``
    sometimes take one of its real values, so that cases reach existing records and not only
    the 404 of an unknown id."""

    def swap(values: Any) -> Any:
        if not isinstance(values, dict) or not any(k in known for k in values):
            return st.just(values)
        return st.fixed_dictionaries(
            {
                k: st.sampled_from([v, *known[k]]) if k in known else st.just(v)
                for k, v in values.items()
            }
        )

    def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
        return swap(path_parameters)

    def flatmap_query(context: Any, query: Any) -> Any:
        return swap(query)

    def flatmap_body(context: Any, body: Any) -> Any:
        return swap(body)

    for hook in (flatmap_path_parameters, flatmap_query, flatmap_body):
        schema.hook(hook)


class Tally:
    """The statuses each operation answered (what the fuzz reached, for the summary)."""

    def __init__(self) -> None:
        self.statuses: dict[str, Counter[int]] = {}

    def add(self, label: str, status: int) -> None:
        self.statuses.setdefault(label, Counter())[status] += 1

    def answered(self, *codes: int) -> set[str]:
        """Operations that answered any of ``codes`` at least once."""
        return {label for label, seen in self.statuses.items() if any(seen[c] for c in codes)}

    def summary(self) -> str:
        lines = [
            f"{label}: " + ", ".join(f"{code}×{n}" for code, n in sorted(seen.items()))
            for label, seen in sorted(self.statuses.items())
        ]
        return "\n".join(lines)


def call_and_check(
    case: schemathesis.Case,
    tally: Tally | None = None,
    timeout_s: float = CALL_TIMEOUT_S,
    app: Any = None,
) -> Any:
    """Send ``case`` (to ``app``, else the schema's app) and hold its answer to the fuzz
    property; returns the response."""
    where = f"{case.method} {case.formatted_path}"
    extra = {"app": app} if app is not None else {}
    response = bounded_call(lambda limit: case.call(timeout=limit, **extra), where, timeout_s)
    if tally is not None:
        tally.add(case.operation.label, response.status_code)
    check_answer(response, where)
    return response


def bounded_call(
    send: Callable[[float], Any], where: str, timeout_s: float = CALL_TIMEOUT_S
) -> Any:
    """``send(timeout_s)``'s response, or a failure saying ``where`` hung or was too slow."""
    import requests

    def call() -> Any:
        try:
            return send(timeout_s)
        except requests.Timeout:
            raise AssertionError(f"{where} hung: no answer within {timeout_s:.0f} s") from None

    started = time.monotonic()
    # the watchdog's grace (5 s at 30 s) lets the transport's own timeout speak first
    response = _within(timeout_s + max(1.0, timeout_s / 6), call, where)
    elapsed = time.monotonic() - started
    assert elapsed < timeout_s, f"{where} took {elapsed:.1f} s (limit {timeout_s} s)"
    return response


def check_answer(response: Any, where: str) -> dict[str, Any] | None:
    """No 5xx, and a 4xx is JSON with a non-empty string ``message``; returns that body."""
    status = response.status_code
    assert status < 500, f"{where} answered {status}: {response.text[:500]}"
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"{where} refused with {status} and a body that is not JSON: {response.text[:300]!r}"
        ) from None
    message = body.get("message") if isinstance(body, dict) else None
    assert isinstance(message, str) and message.strip(), (
        f"{where} refused with {status} without a message: {body!r}"
    )
    return body


def _within(limit_s: float, call: Callable[[], Any], where: str) -> Any:
    """``call()`` in a daemon thread, failing the test if it has not returned in ``limit_s``.

    The transport's own timeout cancels an awaiting app, but not one stuck in a worker
    thread (Starlette waits for sync endpoints) or blocking the event loop; this watchdog
    turns those hangs into a failure too instead of a stuck CI job.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="fuzz-call", daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        raise AssertionError(f"{where} hung: no answer within {limit_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]
