"""Typed client for watchkeep's query API (traces, spans, scores, metrics, quality).

Ships in the SDK-only install (``pip install watchkeep``): it needs httpx and orjson alone.

    from watchkeep.client import Client

    with Client("http://127.0.0.1:8700", "wk_...") as wk:
        for trace in wk.iter_traces(user_id="alice", status="error"):
            print(trace.trace_id, trace.cost_usd)
"""

from watchkeep.client.errors import (
    ApiError,
    AuthenticationError,
    IncompleteExport,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    TransportError,
    Unavailable,
    WatchkeepError,
)
from watchkeep.client.eval_models import (
    Dataset,
    DatasetItem,
    DatasetVersion,
    EvalResult,
    EvalRun,
    EvalScore,
    MetricComparison,
    RunComparison,
)
from watchkeep.client.models import (
    ClassificationReport,
    ClassMetrics,
    Estimate,
    MetricBucket,
    Metrics,
    Page,
    QualityReport,
    Score,
    Span,
    SpanNode,
    TraceDetail,
    TraceSummary,
)
from watchkeep.client.query import AsyncClient, Client, TraceFilter

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "ClassMetrics",
    "ClassificationReport",
    "Client",
    "Dataset",
    "DatasetItem",
    "DatasetVersion",
    "Estimate",
    "EvalResult",
    "EvalRun",
    "EvalScore",
    "IncompleteExport",
    "InvalidRequest",
    "MetricBucket",
    "MetricComparison",
    "Metrics",
    "NotFound",
    "Page",
    "PermissionDenied",
    "QualityReport",
    "RunComparison",
    "Score",
    "Span",
    "SpanNode",
    "TraceDetail",
    "TraceFilter",
    "TraceSummary",
    "TransportError",
    "Unavailable",
    "WatchkeepError",
]
