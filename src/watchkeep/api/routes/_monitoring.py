"""Shared pieces of the monitoring routers: time ranges, call filters, auth error docs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

from watchkeep.api.errors import ApiError
from watchkeep.api.schemas import MAX_NS, ErrorResponse, to_unix_ns
from watchkeep.monitor.metrics import MetricFilter
from watchkeep.store.clock import now_ns

AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Malformed request (e.g. NUL bytes in the URL)"},
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    403: {"model": ErrorResponse, "description": "Key lacks the permission"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
}
HOUR_NS = 3600 * 1_000_000_000


def time_range(
    start: AwareDatetime | None, end: AwareDatetime | None, default_ns: int = HOUR_NS
) -> tuple[int, int]:
    """[start, end) in Unix ns, clamped to [1970, 2262); the last ``default_ns`` by default."""
    end_ns = to_unix_ns(end) if end is not None else now_ns()
    assert end_ns is not None
    end_ns = min(max(end_ns, 0), MAX_NS)
    start_ns = to_unix_ns(start) if start is not None else end_ns - default_ns
    assert start_ns is not None
    start_ns = min(max(start_ns, 0), MAX_NS)
    if start_ns >= end_ns:
        raise ApiError(422, "invalid_request", "'from' must be before 'to' (and after 1970)")
    return start_ns, end_ns


@dataclass
class CallFilter:
    """Query parameters narrowing the LLM calls a metric or drift query looks at."""

    model: Annotated[str | None, Query(max_length=256)] = None
    model_version: Annotated[str | None, Query(max_length=128)] = None
    prompt_version: Annotated[str | None, Query(max_length=128)] = None
    route: Annotated[str | None, Query(max_length=256)] = None
    environment: Annotated[str | None, Query(max_length=128)] = None
    release: Annotated[str | None, Query(max_length=128)] = None
    provider: Annotated[str | None, Query(max_length=128)] = None

    def to_filter(self) -> MetricFilter:
        return MetricFilter(
            model=self.model,
            model_version=self.model_version,
            prompt_version=self.prompt_version,
            route=self.route,
            environment=self.environment,
            release=self.release,
            provider=self.provider,
        )
