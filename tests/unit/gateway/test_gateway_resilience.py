"""Circuit breaker states, retry delays and dispatch order, with an injected clock and sleep."""

from __future__ import annotations

import asyncio
import random

import pytest

from watchkeep.gateway.config import GatewayConfig, RouteSpec
from watchkeep.gateway.dispatch import CallLog, Dispatcher
from watchkeep.gateway.errors import GatewayError, UpstreamError
from watchkeep.gateway.resilience import BreakerState, CircuitBreaker, backoff_delay
from watchkeep.gateway.routing import Deployment, RouteTable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_at_the_threshold_probes_once_and_closes() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(3, 10.0, clock, on_change=changes.append)
    for _ in range(2):
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_probe_opens_the_breaker_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 4.9
    assert not breaker.allow()


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, 0.1, 1.0, None, rng) for a in range(8) for _ in range(50)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 100  # jittered, not fixed
    assert max(backoff_delay(0, 0.1, 1.0, None, rng) for _ in range(100)) <= 0.1
    assert backoff_delay(0, 0.1, 1.0, 3.0, rng) == 3.0


def _table(**route: object) -> RouteTable:
    spec = RouteSpec.model_validate({"name": "m", **route})
    return RouteTable(GatewayConfig(routes=[spec]))


def _run(table: RouteTable, op: object, sleeps: list[float]) -> tuple[object, CallLog]:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    dispatcher = Dispatcher(random.Random(0), record_sleep)
    route = table.resolve(1, "m")
    assert route is not None
    log = CallLog()

    async def go() -> object:
        return await dispatcher.run(route, route.primaries[0], op, log)  # type: ignore[arg-type]

    return asyncio.run(go()), log


def test_retries_wait_for_retry_after_then_fall_back() -> None:
    table = _table(
        deployments=[{"name": "a", "backend": "mock"}],
        fallbacks=[{"name": "b", "backend": "mock"}],
        retry={"attempts": 2, "backoff_s": 0.01},
    )

    async def op(d: Deployment) -> str:
        if d.name == "a":
            raise UpstreamError("busy", status=429, retry_after=1.5)
        return d.name

    sleeps: list[float] = []
    result, log = _run(table, op, sleeps)
    assert result == "b"
    assert sleeps == [1.5, 1.5]
    assert [(a.deployment, a.outcome) for a in log.attempts] == [
        ("a", "status_429"),
        ("a", "status_429"),
        ("a", "status_429"),
        ("b", "ok"),
    ]
    assert (log.retries, log.fallbacks) == (2, 1)


def test_a_long_retry_after_moves_on_without_waiting() -> None:
    table = _table(
        deployments=[{"name": "a", "backend": "mock"}],
        fallbacks=[{"name": "b", "backend": "mock"}],
        retry={"attempts": 3, "max_retry_after_s": 5},
    )

    async def op(d: Deployment) -> str:
        if d.name == "a":
            raise UpstreamError("later", status=503, retry_after=60)
        return d.name

    sleeps: list[float] = []
    assert _run(table, op, sleeps)[0] == "b"
    assert sleeps == []


def test_client_errors_are_answered_at_once() -> None:
    table = _table(
        deployments=[{"name": "a", "backend": "mock"}], fallbacks=[{"name": "b", "backend": "mock"}]
    )

    async def op(d: Deployment) -> str:
        raise UpstreamError("bad field", status=400, retryable=False)

    with pytest.raises(GatewayError) as caught:
        _run(table, op, [])
    assert caught.value.status == 400


def test_canary_weights_split_traffic() -> None:
    table = _table(
        deployments=[
            {"name": "stable", "backend": "mock", "weight": 9},
            {"name": "canary", "backend": "mock", "weight": 1},
        ]
    )
    route = table.resolve(7, "m")
    assert route is not None
    rng = random.Random(3)
    picks = [route.pick(rng).name for _ in range(2000)]
    assert 100 < picks.count("canary") < 300
    assert [d.name for d in route.order(route.primaries[1])] == ["canary", "stable"]
