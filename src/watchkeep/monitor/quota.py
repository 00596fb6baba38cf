"""Per-project limits on what a tenant may create or run (the settings ``quota_*``,
``monitor_min_interval_seconds`` and ``evaluate_now_per_minute``).

Counts are taken inside the transaction that inserts, so a project is refused once it has
reached its quota; concurrent requests of one project may still overshoot by at most the
number that raced (no lock is taken), which bounds abuse, not bookkeeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class QuotaExceeded(Exception):
    """A project reached a limit; ``message`` names it and the setting that sets it."""

    def __init__(self, what: str, limit: float, setting: str) -> None:
        self.message = f"this project may have at most {limit:g} {what} (setting {setting})"
        super().__init__(self.message)


class PerMinute:
    """A sliding one-minute window of events per key (one process; thread-safe).

    With several server processes each keeps its own window, so the effective limit is
    the setting times the number of processes.
    """

    WINDOW_S = 60.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._events: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: int) -> float | None:
        """Record an event for ``key``; None when allowed, else seconds until one would be."""
        now = self._clock()
        with self._lock:
            if len(self._events) > 10_000:
                self._events = {k: q for k, q in self._events.items() if q and q[-1] > now - self.WINDOW_S}
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.WINDOW_S:
                events.popleft()
            if len(events) >= self._limit:
                return max(0.0, events[0] + self.WINDOW_S - now)
            events.append(now)
            return None
