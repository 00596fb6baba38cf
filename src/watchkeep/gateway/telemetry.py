"""Prometheus instruments of the gateway, on the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchkeep.prom_children import LabelledChildren

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    """Requests, upstream attempts, tokens, cache, limits, breakers and dropped traces."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.child = LabelledChildren()  # ``child(metric, *labels)`` on the hot path
        self.requests = Counter(
            "watchkeep_gateway_requests",
            "Gateway requests by operation, route and HTTP status.",
            ["operation", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "watchkeep_gateway_request_seconds",
            "Gateway request latency (to the last byte) by route.",
            ["route"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.ttft = Histogram(
            "watchkeep_gateway_time_to_first_token_seconds",
            "Time to the first streamed token by route.",
            ["route"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.attempts = Counter(
            "watchkeep_gateway_upstream_attempts",
            "Tries of deployments by outcome (ok, timeout, status_N, connection_error, breaker_open).",
            ["route", "deployment", "outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "watchkeep_gateway_tokens",
            "Tokens by route and kind (input, output).",
            ["route", "kind"],
            registry=registry,
        )
        self.cache = Counter(
            "watchkeep_gateway_cache",
            "Response cache look-ups by result (hit, miss, bypass).",
            ["result"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "watchkeep_gateway_rate_limited",
            "Requests refused by a per-key limit, by limit (requests, tokens).",
            ["limit"],
            registry=registry,
        )
        self.limiter_errors = Counter(
            "watchkeep_gateway_limiter_errors",
            "Rate-limit checks that failed open because Redis did not answer.",
            registry=registry,
        )
        self.breaker_open = Gauge(
            "watchkeep_gateway_breaker_open",
            "1 while a deployment's circuit breaker is open or half-open.",
            ["deployment"],
            registry=registry,
        )
        self.shadow = Counter(
            "watchkeep_gateway_shadow_requests",
            "Mirrored shadow requests by outcome (ok, error, dropped).",
            ["route", "outcome"],
            registry=registry,
        )
        self.traces_dropped = Counter(
            "watchkeep_gateway_traces_dropped",
            "Gateway spans lost: the trace spool was full or unwritable (or a span could not be built).",
            registry=registry,
        )
        self.traces_spooled = Counter(
            "watchkeep_gateway_traces_spooled",
            "Gateway spans written to the disk spool because the store could not take them then.",
            registry=registry,
        )
        self.traces_replayed = Counter(
            "watchkeep_gateway_traces_replayed",
            "Spooled gateway spans replayed into the store.",
            registry=registry,
        )
        self.trace_spool_bytes = Gauge(
            "watchkeep_gateway_trace_spool_bytes",
            "Bytes of gateway spans waiting in the disk spool (every process sharing it).",
            registry=registry,
        )
