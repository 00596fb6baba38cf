"""The project overview: calls, errors, latency, tokens, cost, quality, drift and alerts.

Every figure comes from the services the REST API calls (``/api/v1/metrics``,
``/api/v1/quality``, ``/api/v1/monitors``), so the page and the API agree for the same
filter and range. The range is cut into about ``TARGET_BUCKETS`` buckets of a round width;
one grouped query gives the buckets' counters and one their latency percentiles together
with the whole range's (``MetricQueries.series_and_total``): two scans of the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from watchkeep.monitor.metric_queries import MetricFilter
from watchkeep.monitor.quality import QualityReport
from watchkeep.monitor.repository import MonitorRow
from watchkeep.monitor.state import FIRING
from watchkeep.monitor.stats import Estimate, wilson
from watchkeep.security.authz import Permission
from watchkeep.store.trace_queries import TraceFilter
from watchkeep.ui.filters import FilterBar, FilterField, read_filters
from watchkeep.ui.frame import Console, NavItem, page, render

router = APIRouter(include_in_schema=False)
NAV = NavItem("Overview", "", Permission.METRICS_READ, shortcut="o")

FIELDS = (
    FilterField("model", "Model", placeholder="gpt-4o"),
    FilterField("release", "Release", placeholder="v42"),
    FilterField("route", "Route", placeholder="gateway route"),
    FilterField("environment", "Environment", placeholder="prod"),
)
TARGET_BUCKETS = 60
# Round bucket widths (seconds): the smallest giving at most TARGET_BUCKETS buckets wins.
STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
SERIES_METRICS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
LATENCY = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
MAX_SCORE_NAMES = 12
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Totals:
    """The range's figures shown in the stat cards."""

    calls: int
    errors: int
    error_rate: Estimate
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency: dict[str, float | None]


def bucket_seconds(range_ns: int) -> int:
    """A round bucket width giving about ``TARGET_BUCKETS`` buckets over ``range_ns``."""
    wanted = range_ns / NS / TARGET_BUCKETS
    return next((s for s in STEPS if s >= wanted), -(-int(wanted) // 86400) * 86400)


def metric_filter(bar: FilterBar) -> MetricFilter:
    """The filter bar as the metrics service's filter."""
    v = bar.values
    return MetricFilter(
        model=v.get("model"), release=v.get("release"), route=v.get("route"), environment=v.get("environment")
    )


def totals(whole: dict[str, float | None]) -> Totals:
    """The stat cards' figures, with the error rate's Wilson interval."""
    calls, errors = int(whole["requests"] or 0), int(whole["errors"] or 0)
    return Totals(
        calls=calls,
        errors=errors,
        error_rate=wilson(errors, calls),
        input_tokens=int(whole["input_tokens"] or 0),
        output_tokens=int(whole["output_tokens"] or 0),
        cost_usd=whole["cost_usd"] or 0.0,
        latency={name: whole.get(name) for name in LATENCY},
    )


def charts(rows: list[dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    """The four charts' data (``ui.chart``), one point per bucket."""
    x = [int((r["start_unix_nano"] or 0) // NS) for r in rows]

    def series(label: str, name: str, unit: str = "") -> dict[str, Any]:
        return {"label": label, "values": [r.get(name) for r in rows], "unit": unit}

    return {
        "calls": {"x": x, "series": [series("calls", "requests"), series("errors", "errors")]},
        "latency": {
            "x": x,
            "series": [series(n.split("_")[1], n, "ms") for n in LATENCY],
        },
        "tokens": {"x": x, "series": [series("input", "input_tokens"), series("output", "output_tokens")]},
        "cost": {"x": x, "series": [series("cost", "cost_usd", "$")]},
    }


def has_traces(console: Console) -> bool:
    """Whether the project ever received a trace (else the page explains how to send one)."""
    page_ = console.services.traces.list_traces(console.project.project_id, TraceFilter(), limit=1)
    return bool(page_.items)


def monitor_panels(rows: list[MonitorRow]) -> tuple[list[MonitorRow], list[MonitorRow]]:
    """The firing monitors (worst first) and the drift monitors of the project."""
    firing = sorted(
        (r for r in rows if r.state in FIRING), key=lambda r: (r.state.value != "ALERT", r.spec.name)
    )
    drift = sorted((r for r in rows if r.spec.kind == "drift"), key=lambda r: r.spec.name)
    return firing, drift


@router.get("/p/{project}/", response_class=HTMLResponse)
def overview(
    request: Request, console: Annotated[Console, Depends(page(Permission.METRICS_READ))]
) -> HTMLResponse:
    """Calls, latency, errors, tokens, cost, quality, drift and alerts of the project over
    the filter bar's range."""
    bar = read_filters(request, FIELDS)
    pid = console.project.project_id
    f = metric_filter(bar)
    step = bucket_seconds(bar.until_ns - bar.since_ns)
    rows, whole = console.services.monitoring.metrics.series_and_total(
        pid, f, bar.since_ns, bar.until_ns, step * NS, (*SERIES_METRICS, *LATENCY)
    )
    summary = totals(whole)
    quality: list[QualityReport] = []
    firing: list[MonitorRow] = []
    drift: list[MonitorRow] = []
    if console.can(Permission.SCORES_READ):
        quality = console.services.monitoring.quality.reports(
            pid, bar.since_ns, bar.until_ns, model=f.model, max_names=MAX_SCORE_NAMES
        )
    if console.can(Permission.MONITORS_READ):
        firing, drift = monitor_panels(console.services.monitoring.monitors.all(pid))
    return render(
        console,
        "overview.html",
        fragment="results",
        bar=bar,
        step=step,
        totals=summary,
        charts=charts(rows),
        quality=quality,
        firing=firing,
        drift=drift,
        empty_project=summary.calls == 0 and not has_traces(console),
        origin=str(request.base_url).rstrip("/"),
    )
