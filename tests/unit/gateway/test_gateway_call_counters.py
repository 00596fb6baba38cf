"""A call's counters are updated when it finishes (after its answer is out): its tries by
route, deployment and outcome, the cache's answer and a stream's time to first token."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from prometheus_client import CollectorRegistry

from watchkeep.gateway.config import LimitSpec
from watchkeep.gateway.dispatch import Attempt, CallLog
from watchkeep.gateway.service import Gateway
from watchkeep.gateway.telemetry import GatewayMetrics
from watchkeep.gateway.tracing import CallRecord


def _finish(record: CallRecord) -> tuple[CollectorRegistry, list[CallRecord]]:
    registry = CollectorRegistry()
    traced: list[CallRecord] = []
    stand_in = SimpleNamespace(
        metrics=GatewayMetrics(registry), limits=LimitSpec(), traces=SimpleNamespace(record=traced.append)
    )
    Gateway.finish(cast(Gateway, stand_in), record, "key-1")
    return registry, traced


def _record(**fields: object) -> CallRecord:
    return CallRecord(1, "chat", "bot", "0" * 32, "0" * 16, None, **fields)  # type: ignore[arg-type]


def test_every_try_and_the_cache_answer_are_counted_when_the_call_finishes() -> None:
    log = CallLog(route="bot-route", cache="bypass")
    log.attempts += [
        Attempt("a", "breaker_open", 0.0),
        Attempt("b", "status_500", 3.0),
        Attempt("b", "ok", 2.0),
    ]
    registry, traced = _finish(_record(log=log))
    attempts = "watchkeep_gateway_upstream_attempts_total"
    for deployment, outcome in (("a", "breaker_open"), ("b", "status_500"), ("b", "ok")):
        labels = {"route": "bot-route", "deployment": deployment, "outcome": outcome}
        assert registry.get_sample_value(attempts, labels) == 1.0
    assert registry.get_sample_value("watchkeep_gateway_cache_total", {"result": "bypass"}) == 1.0
    assert (
        registry.get_sample_value("watchkeep_gateway_time_to_first_token_seconds_count", {"route": "bot"})
        is None
    )
    assert len(traced) == 1


def test_a_streams_first_token_is_timed_unless_the_cache_answered() -> None:
    registry, _ = _finish(_record(stream=True, ttft_ms=250.0))
    ttft = "watchkeep_gateway_time_to_first_token_seconds"
    assert registry.get_sample_value(f"{ttft}_count", {"route": "bot"}) == 1.0
    assert registry.get_sample_value(f"{ttft}_sum", {"route": "bot"}) == 0.25
    assert registry.get_sample_value("watchkeep_gateway_cache_total", {"result": "miss"}) is None

    cached = _record(stream=True, ttft_ms=1.0, cache_hit=True, log=CallLog(route="bot", cache="hit"))
    registry, _ = _finish(cached)
    assert registry.get_sample_value(f"{ttft}_count", {"route": "bot"}) is None
    assert registry.get_sample_value("watchkeep_gateway_cache_total", {"result": "hit"}) == 1.0
