"""Concurrency that backs off when the target says "too many requests" and recovers after.

Additive increase, multiplicative decrease (as TCP does): a 429 halves the number of
calls in flight and pauses new starts for the server's ``Retry-After``; every ``limit``
successes give one slot back, up to the configured limit. A run against a rate-limited
provider so converges on the rate it allows instead of failing its items.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    """One call in flight; ``epoch`` says which limit it started under."""

    epoch: int


class AdaptiveLimiter:
    """At most ``limit`` calls at once, adapted to the target's rate limiting.

    ``async with limiter.slot() as slot`` (or ``async with limiter``) holds a slot. A
    rate-limit answer to a call that started before the last decrease does not halve the
    limit again: the calls in flight at one 429 were all sent at the old rate.
    """

    def __init__(
        self,
        limit: int,
        *,
        floor: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or floor < 1:
            raise ValueError("limit and floor must be at least 1")
        self.max_limit = limit
        self.floor = min(floor, limit)
        self.limit = limit
        self.in_flight = 0
        self.epoch = 0
        self._successes = 0
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Slot:
        """Wait for a free slot (and for the end of a rate-limit pause)."""
        while True:
            pause = self._paused_until - self._clock()
            if pause > 0:
                await self._sleep(pause)
                continue
            if self.in_flight < self.limit:
                self.in_flight += 1
                return Slot(self.epoch)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up on: this waiter will not use it
                raise

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def on_rate_limited(self, retry_after: float | None = None, slot: Slot | None = None) -> None:
        """Halve the limit (not below the floor) and pause new starts for ``retry_after`` s."""
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)
        self._successes = 0
        if slot is not None and slot.epoch != self.epoch:
            return  # this call was sent before the limit last came down
        self.limit = max(self.floor, self.limit // 2)
        self.epoch += 1

    def on_success(self) -> None:
        """Count a success; every ``limit`` of them raise the limit by one, up to the maximum."""
        if self.limit >= self.max_limit:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()

    def slot(self) -> _SlotContext:
        """``async with limiter.slot() as slot``: holds a slot for one call."""
        return _SlotContext(self)

    async def __aenter__(self) -> Slot:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _SlotContext:
    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> Slot:
        return await self._limiter.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._limiter.release()
