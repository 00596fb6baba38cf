"""Circuit breakers and retry delays: how a route stops hammering a failing deployment.

The breaker counts consecutive failures; at the threshold it opens and the deployment
is skipped until ``reset_timeout`` has passed, then one probe request is let through
(half-open): success closes it, failure opens it again. The clock is injected (and is a
public attribute, so a test can swap it on a live server's breaker) so tests move time
instead of sleeping: a window measured on the wall clock fails on a loaded machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One deployment's breaker (single event loop: no locking needed)."""

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose timeout passed reads half-open)."""
        if self._state is BreakerState.OPEN and self.clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return self._state

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def allow(self) -> bool:
        """Whether a request may go to the deployment now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._set(BreakerState.HALF_OPEN)
            self._probing = True
            return True
        return False

    def success(self) -> None:
        """A call worked: close."""
        self._failures = 0
        self._probing = False
        self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        """A call failed: open at the threshold, or again after a failed probe."""
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            self._probing = False
            self._opened_at = self.clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A probe ended without a verdict (cancelled): let the next request probe."""
        self._probing = False


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before retry ``attempt`` (0-based): full jitter, at least the Retry-After."""
    jittered = rng.uniform(0, min(cap, base * (2**attempt)))
    return max(jittered, retry_after or 0.0)
