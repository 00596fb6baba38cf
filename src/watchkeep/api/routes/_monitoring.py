"""Shared pieces of the monitoring routers: time ranges, call filters, error docs and mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime, StringConstraints

from watchkeep.api.errors import ApiError
from watchkeep.api.openapi import errors
from watchkeep.api.schemas import MAX_NS, to_unix_ns
from watchkeep.monitor.admission import LimitExceeded, OperatorOnly
from watchkeep.monitor.metric_queries import MetricFilter
from watchkeep.monitor.quota import QuotaExceeded
from watchkeep.store.clock import now_ns

AUTH_ERRORS = errors((400, "Malformed request (e.g. NUL bytes in the URL)"), 401, 403, 422)
HOUR_NS = 3600 * 1_000_000_000


@contextmanager
def refusals() -> Iterator[None]:
    """Map the monitoring layer's typed refusals to REST errors: 403 ``forbidden`` for
    what only the operator may declare, 422 ``quota_exceeded`` past a project's limit."""
    try:
        yield
    except OperatorOnly as exc:
        raise ApiError(403, "forbidden", exc.message) from exc
    except (LimitExceeded, QuotaExceeded) as exc:
        raise ApiError(422, "quota_exceeded", exc.message) from exc


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
    tags: Annotated[
        list[Annotated[str, StringConstraints(max_length=128)]] | None,
        Query(max_length=16, description="calls whose trace has every one of these tags"),
    ] = None

    def to_filter(self) -> MetricFilter:
        return MetricFilter(
            model=self.model,
            model_version=self.model_version,
            prompt_version=self.prompt_version,
            route=self.route,
            environment=self.environment,
            release=self.release,
            provider=self.provider,
            tags=tuple(self.tags or ()),
        )
