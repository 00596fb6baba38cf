"""Operational metrics: ``GET /api/v1/metrics`` (the caller's project) and
``GET /api/v1/metrics/resources`` (process-wide samples and host names: the operator's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from watchkeep.api.auth import require, services
from watchkeep.api.errors import ApiError
from watchkeep.api.routes._monitoring import AUTH_ERRORS, CallFilter, time_range
from watchkeep.api.routes.health import OPERATOR_ERRORS, require_operator
from watchkeep.api.schemas import ns_to_datetime
from watchkeep.monitor.metric_queries import METRIC_NAMES, UnknownMetric
from watchkeep.security.authz import Permission
from watchkeep.security.keys import Principal

router = APIRouter(prefix="/api/v1", tags=["metrics"])
MAX_BUCKETS = 10_000  # a series' length: one query must not return a row per second of a year


@router.get("/metrics", responses=AUTH_ERRORS)
def get_metrics(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.METRICS_READ))],
    calls: Annotated[CallFilter, Depends()],
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    bucket_seconds: Annotated[int | None, Query(ge=1, le=31 * 86400)] = None,
    metrics: Annotated[
        str | None, Query(max_length=1000, description=f"Comma list of: {', '.join(METRIC_NAMES)}")
    ] = None,
) -> dict[str, Any]:
    """Request rate, error rate, latency and TTFT p50/p90/p99, tokens and cost of LLM calls
    over [from, to) (default: the last hour), in total and per bucket when asked."""
    start_ns, end_ns = time_range(start, end)
    if bucket_seconds and (end_ns - start_ns) // (bucket_seconds * 1_000_000_000) > MAX_BUCKETS:
        raise ApiError(
            422,
            "invalid_request",
            f"at most {MAX_BUCKETS} buckets a query: widen bucket_seconds or narrow from/to",
        )
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    queries = services(request).monitoring.metrics
    f = calls.to_filter()
    try:
        if bucket_seconds:  # one scan gives the buckets and the whole window
            series, summary = queries.series_and_total(
                principal.project_id, f, start_ns, end_ns, bucket_seconds * 1_000_000_000, names
            )
        else:
            series, summary = [], queries.window(principal.project_id, f, start_ns, end_ns, names)
    except (UnknownMetric, ValueError) as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    summary.pop("start_unix_nano", None)
    return {
        "from": ns_to_datetime(start_ns),
        "to": ns_to_datetime(end_ns),
        "bucket_seconds": bucket_seconds,
        "summary": summary,
        "series": [{"start": ns_to_datetime(int(r.pop("start_unix_nano") or 0)), **r} for r in series],
    }


@router.get(
    "/metrics/resources",
    responses={**AUTH_ERRORS, **OPERATOR_ERRORS},
    dependencies=[Depends(require_operator)],
)
def get_resources(
    request: Request,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Sampled CPU, memory and GPU use of the server, worker and local model processes, with
    their hosts: for the operator (its token, or loopback without one), not project keys."""
    start_ns, end_ns = time_range(start, end)
    mon = services(request).monitoring
    rows = mon.resources.recent(start_ns, end_ns, metric, limit)
    return {
        "gpu": mon.sampler.gpu.status,
        "items": [{"sampled_at": ns_to_datetime(r.pop("sampled_at_unix_nano")), **r} for r in rows],
    }
