"""Deadlines for upstream tries that share one event-loop timer.

``asyncio.timeout`` arms and cancels a loop timer for every use: about 7 µs of CPU a try
under uvloop, measured alone (more in a server, where its code is cold between calls).
Every try of the dispatcher needs a deadline, and nearly all of them end long before it,
so ``Deadlines`` keeps the deadlines in a heap and arms one timer, for the earliest one
still pending; a try that ends only marks its entry done. When the timer fires, every due
try still running is cancelled and turned into ``TimeoutError`` exactly as
``asyncio.timeout`` does (a cancellation from elsewhere stays a cancellation). Finished
entries are dropped when they reach the heap's top, and the heap is compacted once most
of it is finished, so it holds about the tries in flight, not every try of the last
timeout's length.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from types import TracebackType

_COMPACT_AT = 1024  # finished entries before the heap may be rebuilt without them


class Deadline:
    """One try's deadline: an async context manager, used once."""

    __slots__ = ("_cancelling", "_owner", "_seconds", "_task", "done", "expired")

    def __init__(self, owner: Deadlines, seconds: float) -> None:
        self._owner = owner
        self._seconds = seconds
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self.done = False
        self.expired = False

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._owner.add(self, self._seconds)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.done = True
        self._owner.finished()
        if self.expired:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def expire(self) -> None:
        """Cancel the try (called by the timer when the deadline has passed)."""
        assert self._task is not None
        self.expired = True
        self._task.cancel()


class Deadlines:
    """The pending deadlines of one event loop (a new loop starts an empty heap)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf
        self._finished = 0

    def within(self, seconds: float) -> Deadline:
        """``async with deadlines.within(s):`` behaves as ``async with asyncio.timeout(s):``."""
        return Deadline(self, seconds)

    def add(self, deadline: Deadline, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the entries of a closed loop's tries are moot
            self._loop, self._heap, self._timer, self._armed_for, self._finished = loop, [], None, math.inf, 0
        when = loop.time() + seconds
        heapq.heappush(self._heap, (when, next(self._order), deadline))
        if when < self._armed_for:
            self._arm(when)

    def finished(self) -> None:
        self._finished += 1
        if self._finished >= _COMPACT_AT and self._finished * 2 > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].done]
            heapq.heapify(self._heap)
            self._finished = 0

    def pending(self) -> int:
        """Entries held (finished ones not yet dropped included): for tests and checks."""
        return len(self._heap)

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._armed_for = when

    def _fire(self) -> None:
        due, self._timer, self._armed_for = self._armed_for, None, math.inf
        heap = self._heap
        while heap and (heap[0][0] <= due or heap[0][2].done):
            _, _, deadline = heapq.heappop(heap)
            if deadline.done:
                self._finished = max(0, self._finished - 1)
            else:
                deadline.expire()
        if heap:
            self._arm(heap[0][0])
