"""Send one request along a route: retries with backoff, breakers, fallbacks, timeouts.

The deployments are tried in the route's order (the weighted pick first); each gets
its own timeout and up to ``retry.attempts`` retries for retryable failures, waiting
with exponential backoff and full jitter, never less than the upstream's Retry-After
(a Retry-After longer than ``max_retry_after_s`` moves on to the next deployment
instead). An open breaker skips its deployment. Client errors from an upstream (400,
413, 422) are the caller's and are answered at once. Every try is logged for the trace, and counted
in the metrics once the call's answer is out (``count_attempts``, from ``Gateway.finish``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from watchkeep.gateway.deadlines import Deadlines
from watchkeep.gateway.errors import GatewayError, UpstreamError
from watchkeep.gateway.resilience import backoff_delay
from watchkeep.gateway.routing import Deployment, Route
from watchkeep.gateway.telemetry import GatewayMetrics

T = TypeVar("T")
_CLIENT_STATUSES = frozenset({400, 413, 422})


@dataclass(slots=True)
class Attempt:
    """One try of one deployment."""

    deployment: str
    outcome: str
    ms: float


@dataclass(slots=True)
class CallLog:
    """What happened while dispatching: for the trace and the metrics."""

    route: str = ""  # the route's name: the attempts' metric label
    cache: str = ""  # the response cache's answer, "hit", "miss" or "bypass" (none: not asked)
    decision: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    retries: int = 0
    fallbacks: int = 0
    served_by: Deployment | None = None
    picked: Deployment | None = None  # the weighted pick: a call nothing served counts against it


class Dispatcher:
    """Runs an operation against a route's deployments until one succeeds."""

    def __init__(
        self,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._deadlines = Deadlines()  # one loop timer for every try's timeout

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def deadlines(self) -> Deadlines:
        """The shared-timer timeouts of this dispatcher's loop (also for a stream's reads)."""
        return self._deadlines

    async def run(
        self,
        route: Route,
        first: Deployment,
        op: Callable[[Deployment], Awaitable[T]],
        log: CallLog,
    ) -> T:
        """``op``'s result from the first deployment that succeeds; else 502 or 504."""
        retry = route.spec.retry
        log.picked = first
        log.route = route.name
        last: UpstreamError | None = None
        tried = 0
        for deployment in route.order(first):
            if not deployment.breaker.allow():
                log.attempts.append(Attempt(deployment.name, "breaker_open", 0.0))
                continue
            if tried:
                log.fallbacks += 1
            tried += 1
            for attempt in range(retry.attempts + 1):
                if attempt:
                    log.retries += 1
                started = time.perf_counter()
                try:
                    async with self._deadlines.within(deployment.spec.timeout_s):
                        result = await op(deployment)
                except TimeoutError:
                    error = UpstreamError(
                        f"deployment {deployment.name!r} timed out after {deployment.spec.timeout_s:g} s",
                        timeout=True,
                    )
                except UpstreamError as exc:
                    error = exc
                except BaseException:
                    deployment.breaker.release()
                    raise
                else:
                    deployment.breaker.success()
                    _record(log, deployment, "ok", started)
                    log.served_by = deployment
                    return result
                last = error
                _record(log, deployment, error.outcome, started)
                if error.status in _CLIENT_STATUSES:
                    deployment.breaker.release()
                    raise GatewayError(error.status, error.message, code="upstream_rejected")
                deployment.breaker.failure()
                if not error.retryable or attempt == retry.attempts or not deployment.breaker.allow():
                    break
                if error.retry_after is not None and error.retry_after > retry.max_retry_after_s:
                    break
                await self._sleep(
                    backoff_delay(attempt, retry.backoff_s, retry.backoff_max_s, error.retry_after, self._rng)
                )
        raise _exhausted(route, last)


def _record(log: CallLog, deployment: Deployment, outcome: str, started: float) -> None:
    log.attempts.append(Attempt(deployment.name, outcome, (time.perf_counter() - started) * 1000))


def count_attempts(metrics: GatewayMetrics, log: CallLog) -> None:
    """Count the call's tries by route, deployment and outcome: after its answer is sent,
    not on its way to the caller (a streamed call's first chunk waited for this)."""
    for attempt in log.attempts:
        metrics.child(metrics.attempts, log.route, attempt.deployment, attempt.outcome).inc()


def _exhausted(route: Route, last: UpstreamError | None) -> GatewayError:
    if last is None:
        return GatewayError(
            502,
            f"no deployment of {route.name!r} is available (circuit breakers open)",
            type="upstream_error",
            code="upstream_unavailable",
        )
    if last.timeout:
        return GatewayError(504, last.message, type="upstream_error", code="upstream_timeout")
    return GatewayError(
        502,
        f"every deployment of {route.name!r} failed: {last.message}",
        type="upstream_error",
        code="upstream_error",
    )
