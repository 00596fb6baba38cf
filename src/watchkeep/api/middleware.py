"""Pure-ASGI middleware: request metrics and a structured access log, NUL rejection.

Kept as raw ASGI (not BaseHTTPMiddleware) so streaming bodies pass through untouched
and the per-request cost stays a few microseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeep.prom_children import LabelledChildren

access_log = logging.getLogger("watchkeep.access")


class HttpMetrics:
    """Request counts and latency by route template (bounded cardinality)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "watchkeep_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "watchkeep_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )


class ObservabilityMiddleware:
    """Counts, times and logs every HTTP request; refuses NUL bytes in the URL (400)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children = LabelledChildren()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"").lower() or "\x00" in scope.get("path", ""):
            await _reject_nul(send)
            return
        started = time.perf_counter()
        status = 500

        def send_wrapper(message: Message) -> Awaitable[None]:
            # Not a coroutine: the server's own ``send`` awaitable is handed back, so a
            # message costs no extra coroutine frame (a stream sends one per chunk).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            self._children(self.metrics.requests, scope["method"], route, str(status)).inc()
            self._children(self.metrics.duration, route).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                principal = getattr(scope.get("state", {}).get("principal"), "project_name", None)
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "project": principal,
                    },
                )


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def _reject_nul(send: Send) -> None:
    body = orjson.dumps(
        {"error": {"code": "invalid_request", "message": "NUL bytes are not allowed in URLs"}}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
