"""Where model code runs: worker threads with a time limit per call, so no call can stall
the server.

:class:`ModelRunner` runs each call of model code (``predict``, a batch's ``predict_batch``)
in a worker thread while the event loop goes on answering other requests. A call still
running after ``timeout_s`` is answered with :class:`ModelTimeout` (504): Python cannot
stop a thread, so the call goes on in its thread, but it no longer counts against
``model_threads``: the next call gets a fresh thread. Such *hung* calls are bounded: once
``max_hung_calls`` of them are still running, new calls are refused at once with
:class:`ModelsHung` (503) and ``/ready`` answers 503, until one of them ends. The threads
are daemon threads, so a call that never ends cannot keep the process from exiting on
SIGTERM.

``model_threads`` is how many calls run side by side (0 means one at a time, as 1).
With ``timeout_s: null`` and ``model_threads: 0`` model code runs on the event loop
itself: no thread hand-off, but no time limit either, and a call that hangs stops the
whole worker.

The hand-off is on every request's path, so it is kept to the least: the worker thread
settles an asyncio future on the loop with one ``call_soon_threadsafe`` and the time limit
is one ``call_later`` timer (no ``concurrent.futures`` future chained to an asyncio one,
no ``asyncio.wait``), about half the loop's work per call of the obvious way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from keel.errors import KeelError

log = logging.getLogger("keel.serving")


class ModelUnavailable(KeelError):
    """The model could not answer this call at all: it timed out, or too many calls hang."""


class ModelTimeout(ModelUnavailable):
    """A call of model code ran past ``api.timeout_s`` (answered 504)."""


class ModelsHung(ModelUnavailable):
    """Too many calls are still running past their time limit (answered 503)."""


class ModelRunner:
    """Runs model code off the event loop with a time limit (see the module docstring).

    Args:
        threads: calls that run side by side (``api.model_threads``; 0 is one at a time).
        timeout_s: how long one call may run (None: no limit).
        max_hung: calls past their limit that may still be running before new calls are
            refused.
    """

    def __init__(self, threads: int, timeout_s: float | None, max_hung: int) -> None:
        self.concurrency = max(threads, 1)
        self.timeout_s = timeout_s
        self.max_hung = max_hung
        self.on_loop = timeout_s is None and threads == 0
        self._hung = 0
        self._lock = threading.Lock()
        self._slots = asyncio.Semaphore(self.concurrency)
        # Every admitted call has a thread at once: at most `concurrency` calls hold a slot,
        # and calls are admitted only while fewer than `max_hung` hang.
        self._threads = (
            None if self.on_loop else _DaemonPool(self.concurrency + max_hung, "keel-model")
        )

    @property
    def hung(self) -> int:
        """Calls past their time limit that are still running."""
        return self._hung

    @property
    def saturated(self) -> bool:
        """Whether new calls are refused because ``max_hung`` calls are still running."""
        return self._hung >= self.max_hung

    def saturated_message(self) -> str:
        # Without a limit, only calls whose request was cancelled (the server stopping) hang.
        past = f"past the {self.timeout_s:g} s time limit" if self.timeout_s else "unanswered"
        return (
            f"{self._hung} model calls are still running {past} (api.max_hung_calls is "
            f"{self.max_hung}), so this server refuses new calls until one of them ends: find "
            "the inputs that hang in the server log, or restart it"
        )

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)``, in a worker thread and within ``timeout_s`` when set."""
        if self._threads is None:
            return func(*args)
        if self.saturated:
            raise ModelsHung(self.saturated_message())
        async with self._slots:
            if self.saturated:  # more calls hung while this one waited for a slot
                raise ModelsHung(self.saturated_message())
            loop = asyncio.get_running_loop()
            call = _Call(func, args, loop)
            self._threads.submit(call.run)
            started = time.monotonic()
            timer = (
                loop.call_later(self.timeout_s, self._expire, call, started)
                if self.timeout_s is not None
                else None
            )
            try:
                return await call.waiter
            except asyncio.CancelledError:
                # The request went away (the server stopping): the call is nobody's now.
                self._abandon(call, started, timed_out=False)
                raise
            finally:
                if timer is not None:
                    timer.cancel()

    def _expire(self, call: _Call, started: float) -> None:
        """The time limit passed (on the loop): answer 504 unless the call just ended."""
        if call.waiter.done() or not self._abandon(call, started, timed_out=True):
            return  # it ended just as the time ran out: its result is on its way
        call.waiter.set_exception(
            ModelTimeout(
                f"the model did not answer within {self.timeout_s:g} s, this server's limit "
                "per call: raise it with api.timeout_s in keel.yml or keel serve --timeout if "
                "such inputs need longer"
            )
        )

    def _abandon(self, call: _Call, started: float, timed_out: bool) -> bool:
        """Let a call that ran out of time go on in its thread, counted until it ends;
        False when it has ended already."""

        def ended() -> None:  # in the call's thread, when it returns
            with self._lock:
                self._hung -= 1
                left = self._hung
            log.warning(
                "a model call that had timed out ended after %.1f s (%d still running)",
                time.monotonic() - started,
                left,
            )

        with self._lock:  # counted first, so that ended() never finds the count at 0
            self._hung += 1
            hung = self._hung
        if not call.abandon(ended):
            with self._lock:
                self._hung -= 1
            return False
        if timed_out:
            log.warning(
                "a model call is still running after %.1f s: answered as timed out; it goes "
                "on in its thread (%d such calls now, at most %d)",
                time.monotonic() - started,
                hung,
                self.max_hung,
            )
        return True

    def close(self) -> None:
        """Stop the idle threads; hung calls are left to end or to die with the process."""
        if self._threads is not None:
            self._threads.shutdown()


class _Call:
    """One call of model code: run in a worker thread, settled on the event loop."""

    __slots__ = ("args", "ended", "finished", "func", "lock", "loop", "waiter")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], loop: Any) -> None:
        self.func, self.args, self.loop = func, args, loop
        self.waiter: asyncio.Future[Any] = loop.create_future()
        self.lock = threading.Lock()
        self.finished = False
        self.ended: Callable[[], None] | None = None  # set once the call is abandoned

    def run(self) -> None:
        """In the worker thread: the call, then its outcome handed to the loop."""
        error: BaseException | None = None
        result: Any = None
        try:
            result = self.func(*self.args)
        except BaseException as exc:  # handed to the caller, like an executor does
            error = exc
        with self.lock:
            self.finished = True
            ended = self.ended
        self.func = self.args = None  # type: ignore[assignment]  # do not hold on to inputs
        if ended is not None:
            ended()
            return  # nobody waits for the outcome any more
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            self.loop.call_soon_threadsafe(self._settle, result, error)

    def abandon(self, ended: Callable[[], None]) -> bool:
        """Call ``ended`` (in the thread) when the call returns; False if it has already."""
        with self.lock:
            if self.finished:
                return False
            self.ended = ended
            return True

    def _settle(self, result: Any, error: BaseException | None) -> None:
        if self.waiter.done():  # timed out or cancelled meanwhile
            return
        if error is not None:
            self.waiter.set_exception(error)
        else:
            self.waiter.set_result(result)


class _DaemonPool:
    """A minimal thread pool of daemon threads, started on demand up to ``size``.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so a
    model call that never returns would keep a stopped server's process alive for ever.
    A job is a callable that reports its own outcome (:meth:`_Call.run`).
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        self._work.put(job)
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) < self.size:
                    thread = threading.Thread(
                        target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()

    def _serve(self) -> None:
        while True:
            job = self._work.get()
            if self._closed:
                return
            job()
            del job  # do not hold on to a call while idle
            self._idle.release()

    def shutdown(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._work.put(_noop)


def _noop() -> None:
    return None
