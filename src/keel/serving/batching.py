"""Adaptive micro-batching: concurrent single predictions grouped into one ``predict_batch``.

Callers await :meth:`MicroBatcher.predict`; one task takes the waiting inputs, runs the
model's ``predict_batch`` on them in a worker thread and hands each caller its own result.
The batch adapts to the load: while a batch is being predicted new calls queue up and form
the next one, so an idle server answers a lone call at once (a batch of one) and a busy
server predicts in batches of up to ``max_batch_size``. Only when the previous batch had
company does the batcher wait up to ``max_wait_ms`` for more callers to arrive.

When a batch fails, its inputs are predicted one by one, side by side, so only the bad
input's caller sees the error and no caller waits behind a slow input of its batch. A batch
that runs past the time limit (:class:`~keel.serving.runner.ModelTimeout`) is not retried:
every caller in it gets the 504, since retrying would run the input that hangs again. Up to
``concurrency`` batches are predicted at once (``api.model_threads``), so with more than one
a hung batch does not hold up the calls after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from keel.serving.runner import ModelUnavailable


@dataclass
class _Call:
    inputs: Any
    future: asyncio.Future[Any]


class MicroBatcher:
    """Groups concurrent calls into ``predict_batch(list_of_inputs)`` calls."""

    def __init__(
        self,
        predict_batch: Callable[[list[Any]], list[Any]],
        run: Callable[..., Awaitable[Any]] | None = None,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] | None = None,
        concurrency: int = 1,
    ) -> None:
        self._predict_batch = predict_batch
        self._run_model = run or _in_thread
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Call] | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # the previous batch had more than one call
        self._slots = asyncio.Semaphore(max(concurrency, 1))  # batches predicted at once
        self._in_flight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for task in [self._task, *self._in_flight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    async def predict(self, inputs: Any) -> Any:
        """This caller's result, predicted in a batch with whoever else is waiting."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Call(inputs, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            # Wait for a free slot first: calls arriving meanwhile form the next batch.
            await self._slots.acquire()
            try:
                calls = [await queue.get()]
            except BaseException:
                self._slots.release()
                raise
            self._take_waiting(calls)
            if self._busy and len(calls) < self.max_batch_size and self.max_wait > 0:
                deadline = asyncio.get_running_loop().time() + self.max_wait
                while len(calls) < self.max_batch_size:
                    timeout = deadline - asyncio.get_running_loop().time()
                    if timeout <= 0:
                        break
                    try:
                        calls.append(await asyncio.wait_for(queue.get(), timeout))
                    except TimeoutError:
                        break
                    self._take_waiting(calls)
            self._busy = len(calls) > 1
            task = asyncio.get_running_loop().create_task(self._predict_then_release(calls))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _predict_then_release(self, calls: list[_Call]) -> None:
        try:
            await self._predict(calls)
        finally:
            self._slots.release()

    def _take_waiting(self, calls: list[_Call]) -> None:
        assert self._queue is not None
        while len(calls) < self.max_batch_size and not self._queue.empty():
            calls.append(self._queue.get_nowait())

    async def _predict(self, calls: list[_Call]) -> None:
        live = [c for c in calls if not c.future.done()]  # a caller may have gone away
        if not live:
            return
        if self._on_batch is not None:
            self._on_batch(len(live))
        try:
            results = await self._run_model(self._checked, [c.inputs for c in live])
        except Exception as exc:
            if len(live) == 1 or isinstance(exc, ModelUnavailable):
                # A timeout is not retried one by one: that would run the hanging input again.
                for call in live:
                    _settle(call.future, error=exc)
                return
            # find the input(s) that fail; the others still get results. Side by side, so
            # no caller waits behind a slow or hanging input of the same batch.
            await asyncio.gather(*(self._predict_one(call) for call in live))
            return
        for call, result in zip(live, results, strict=True):
            _settle(call.future, result=result)

    async def _predict_one(self, call: _Call) -> None:
        try:
            result = await self._run_model(self._checked, [call.inputs])
        except Exception as exc:
            _settle(call.future, error=exc)
        else:
            _settle(call.future, result=result[0])

    def _checked(self, batch: list[Any]) -> list[Any]:
        results = self._predict_batch(batch)
        if len(results) != len(batch):
            raise ValueError(
                f"predict_batch returned {len(results)} results for {len(batch)} inputs"
            )
        return results


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: Exception | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
