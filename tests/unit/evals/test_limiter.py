"""The adaptive limiter: slots, halving on 429, pausing for Retry-After, additive recovery."""

from __future__ import annotations

import asyncio

import pytest

from watchkeep.evals.limiter import AdaptiveLimiter


class FakeClock:
    """A clock that advances only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_never_more_than_limit_in_flight() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(3)
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with limiter:
                peak = max(peak, limiter.in_flight)
                await asyncio.sleep(0)
                await asyncio.sleep(0)

        await asyncio.gather(*(call() for _ in range(20)))
        assert limiter.in_flight == 0
        return peak

    assert asyncio.run(scenario()) == 3


def test_rate_limit_halves_pauses_and_recovers() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, floor=2, clock=clock, sleep=clock.sleep)
    limiter.on_rate_limited(retry_after=5.0)
    assert limiter.limit == 4

    async def start() -> None:
        async with limiter.slot():
            pass

    asyncio.run(start())
    assert clock.slept == [5.0]  # the next start waited out the pause
    limiter.on_rate_limited(None)
    limiter.on_rate_limited(None)
    assert limiter.limit == 2  # never below the floor
    for _ in range(2):
        limiter.on_success()
    assert limiter.limit == 3  # +1 per `limit` successes
    for _ in range(3):
        limiter.on_success()
    assert limiter.limit == 4
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 8  # back to, and not above, the configured limit


def test_calls_sent_before_a_decrease_do_not_halve_again() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(16)
        slots = [await limiter.acquire() for _ in range(4)]
        for slot in slots:  # four 429s from calls sent at the old rate
            limiter.on_rate_limited(0, slot)
        for _ in slots:
            limiter.release()
        return limiter.limit

    assert asyncio.run(scenario()) == 8


def test_waiters_start_when_the_limit_grows_back() -> None:
    async def scenario() -> list[str]:
        limiter = AdaptiveLimiter(2)
        limiter.on_rate_limited(None)  # limit 1
        order: list[str] = []
        first = await limiter.acquire()

        async def waiting() -> None:
            async with limiter:
                order.append("second")

        task = asyncio.create_task(waiting())
        await asyncio.sleep(0)
        assert order == []  # blocked: one slot, held
        limiter.on_success()  # limit 2: the waiter may start though the first still holds
        await task
        limiter.release()
        assert first.epoch == 1
        return order

    assert asyncio.run(scenario()) == ["second"]


def test_a_cancelled_waiter_gives_up_its_place() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(1)
        await limiter.acquire()
        task = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        limiter.release()
        async with limiter:
            return limiter.in_flight

    assert asyncio.run(scenario()) == 1


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimiter(0)
