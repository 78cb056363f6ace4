"""ModelRunner and the micro-batcher under calls that hang: time limits, hung-call bounds."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from keel.serving.batching import MicroBatcher
from keel.serving.runner import ModelRunner, ModelsHung, ModelTimeout


def test_a_call_past_its_limit_times_out_while_others_run() -> None:
    release = threading.Event()

    def hang() -> str:
        release.wait(10)
        return "late"

    async def main() -> tuple[float, list[int], int]:
        runner = ModelRunner(threads=2, timeout_s=0.3, max_hung=2)
        started = time.monotonic()
        hung = asyncio.ensure_future(runner.run(hang))
        quick = await asyncio.gather(*(runner.run(lambda i=i: i * 2) for i in range(20)))
        with pytest.raises(ModelTimeout, match=r"within 0\.3 s.*api\.timeout_s.*--timeout"):
            await hung
        waited = time.monotonic() - started
        assert runner.hung == 1 and not runner.saturated
        release.set()  # the hung call ends: it is no longer counted
        deadline = time.monotonic() + 5
        while runner.hung and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        left = runner.hung
        runner.close()
        return waited, quick, left

    waited, quick, left = asyncio.run(main())
    assert 0.29 <= waited < 2
    assert quick == [i * 2 for i in range(20)]
    assert left == 0


def test_max_hung_calls_refuse_new_calls_until_one_ends() -> None:
    release = threading.Event()

    async def main() -> None:
        runner = ModelRunner(threads=1, timeout_s=0.1, max_hung=2)
        for _ in range(2):
            with pytest.raises(ModelTimeout):
                await runner.run(release.wait, 10)
        assert runner.saturated
        started = time.monotonic()
        with pytest.raises(ModelsHung, match=r"2 model calls are still running past the 0\.1 s"):
            await runner.run(lambda: 1)
        assert time.monotonic() - started < 0.05  # refused at once
        release.set()
        deadline = time.monotonic() + 5
        while runner.saturated and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert await runner.run(lambda: 1) == 1
        runner.close()

    asyncio.run(main())


def test_threads_are_daemons_and_no_limit_runs_on_the_loop() -> None:
    names: list[str] = []

    async def main() -> None:
        on_loop = ModelRunner(threads=0, timeout_s=None, max_hung=1)
        await on_loop.run(lambda: names.append(threading.current_thread().name))
        threaded = ModelRunner(threads=0, timeout_s=5, max_hung=1)
        daemon = await threaded.run(lambda: threading.current_thread().daemon)
        assert daemon  # a call that never ends cannot keep the process from exiting
        threaded.close()

    asyncio.run(main())
    assert names == [threading.main_thread().name]


def test_a_batch_that_hangs_fails_every_caller_in_it_and_the_next_batch_is_answered() -> None:
    release = threading.Event()

    def predict_batch(batch: list[int]) -> list[int]:
        if 999 in batch:
            release.wait(10)
        return [x * 2 for x in batch]

    async def main() -> tuple[list[object], list[int]]:
        runner = ModelRunner(threads=2, timeout_s=0.3, max_hung=4)
        batcher = MicroBatcher(
            predict_batch, run=runner.run, max_batch_size=8, max_wait_ms=0, concurrency=2
        )
        batcher.start()
        first = asyncio.ensure_future(batcher.predict(1))  # a lone call: a batch of one
        await asyncio.sleep(0.05)
        # These wait while the first is predicted, then form one batch with the hanging input.
        shared = [asyncio.ensure_future(batcher.predict(x)) for x in (2, 999, 3)]
        # (a caller left unsettled would wait for ever: fail after 5 s instead)
        outcomes = await asyncio.wait_for(asyncio.gather(first, *shared, return_exceptions=True), 5)
        after = await asyncio.gather(*(batcher.predict(x) for x in (4, 5)))
        release.set()
        await batcher.stop()
        runner.close()
        return outcomes, after

    outcomes, after = asyncio.run(main())
    assert outcomes[0] == 2
    # every caller of the batch that hung gets the timeout (none is left waiting)
    assert all(isinstance(o, ModelTimeout) for o in outcomes[1:]), outcomes
    assert after == [8, 10]
