"""``Deadlines``: the dispatcher's shared-timer timeouts behave as ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import time

import pytest

from watchkeep.gateway.deadlines import Deadlines


async def _sleep_within(deadlines: Deadlines, limit: float, takes: float) -> str:
    async with deadlines.within(limit):
        await asyncio.sleep(takes)
    return "done"


def test_a_try_past_its_deadline_times_out_and_one_in_time_finishes() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await _sleep_within(deadlines, 0.05, 5)
        assert 0.04 <= time.monotonic() - started < 2
        assert await _sleep_within(deadlines, 5, 0.01) == "done"
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0  # nothing left pending on the caller

    asyncio.run(main())


def test_a_shorter_deadline_added_later_fires_first() -> None:
    async def main() -> tuple[str | BaseException, str | BaseException]:
        deadlines = Deadlines()
        long = asyncio.create_task(_sleep_within(deadlines, 0.6, 0.3))
        await asyncio.sleep(0.01)
        short = asyncio.create_task(_sleep_within(deadlines, 0.05, 5))
        return await asyncio.gather(long, short, return_exceptions=True)

    long, short = asyncio.run(main())
    assert long == "done"
    assert isinstance(short, TimeoutError)


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        task = asyncio.create_task(_sleep_within(deadlines, 5, 5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_finished_tries_do_not_pile_up() -> None:
    async def main() -> int:
        deadlines = Deadlines()
        for _ in range(5_000):
            await _sleep_within(deadlines, 60, 0)
        return deadlines.pending()

    assert asyncio.run(main()) <= 2_100


def test_a_new_event_loop_starts_afresh() -> None:
    deadlines = Deadlines()
    assert asyncio.run(_sleep_within(deadlines, 5, 0)) == "done"

    async def late() -> None:
        with pytest.raises(TimeoutError):
            await _sleep_within(deadlines, 0.05, 5)

    asyncio.run(late())
