"""The query API's answers as frozen dataclasses, built from its JSON.

They mirror ``watchkeep.api.schemas`` (and the monitoring reports) field for field; a test
compares them with the served OpenAPI schema, so the client cannot silently fall behind.
Unknown keys in an answer are ignored, so a newer server does not break an older client.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def parse_time(value: Any) -> datetime:
    """An ISO 8601 timestamp from the API (``Z`` or an offset) as an aware datetime."""
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _build(cls: type[T], data: dict[str, Any], **converted: Any) -> T:
    """``cls`` from the JSON object ``data``: missing keys are None, ``converted`` wins."""
    get = data.get
    values = {n: get(n) for n in _names(cls)}  # type: ignore[arg-type]
    values.update(converted)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Score:
    """A stored score or piece of feedback (``ScoreOut``)."""

    id: int
    trace_id: str
    span_id: str | None
    name: str
    data_type: str
    value: float | None
    string_value: str | None
    label: str | None
    source: str
    comment: str | None
    metadata: dict[str, Any] | None
    created_at_unix_nano: int
    idempotency_key: str | None
    created_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Score:
        return _build(cls, data, created_at=parse_time(data["created_at"]))


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace of a list: root, time span, trace attributes, summed counters (``TraceSummaryOut``)."""

    trace_id: str
    name: str | None
    root_span_id: str | None
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    has_error: bool
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    tags: tuple[str, ...]
    span_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    models: tuple[str, ...]
    start_time: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceSummary:
        return _build(
            cls,
            data,
            tags=tuple(data.get("tags") or ()),
            models=tuple(data.get("models") or ()),
            start_time=parse_time(data["start_time"]),
        )


@dataclass(frozen=True, slots=True)
class Span:
    """A stored span with its typed fields (``SpanOut``); ``attributes`` holds the rest."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    status_code: int
    status_message: str | None
    start_time_unix_nano: int
    end_time_unix_nano: int
    duration_ms: float
    service_name: str | None
    operation: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    time_to_first_token_ms: float | None
    finish_reason: str | None
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    tags: tuple[str, ...] | None
    prompt_name: str | None
    prompt_version: str | None
    model_version: str | None
    attributes: dict[str, Any] | None
    resource_attributes: dict[str, Any] | None
    events: tuple[dict[str, Any], ...] | None
    status: str
    start_time: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        return _build(cls, data, **_span_conversions(data))


def _span_conversions(data: dict[str, Any]) -> dict[str, Any]:
    tags, events = data.get("tags"), data.get("events")
    return {
        "tags": tuple(tags) if tags is not None else None,
        "events": tuple(events) if events is not None else None,
        "start_time": parse_time(data["start_time"]),
    }


@dataclass(frozen=True, slots=True)
class SpanNode(Span):
    """A span in a trace tree with its message payloads and children (``SpanNode``)."""

    input: Any = None
    output: Any = None
    detached: bool = False
    children: tuple[SpanNode, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpanNode:
        return _build(
            cls,
            data,
            **_span_conversions(data),
            detached=bool(data.get("detached", False)),
            children=tuple(SpanNode.from_json(c) for c in data.get("children") or ()),
        )

    def walk(self, depth: int = 0) -> list[tuple[int, SpanNode]]:
        """This span and its descendants in tree order, with their depth (no recursion)."""
        out: list[tuple[int, SpanNode]] = []
        stack: list[tuple[int, SpanNode]] = [(depth, self)]
        while stack:
            level, node = stack.pop()
            out.append((level, node))
            stack.extend((level + 1, child) for child in reversed(node.children))
        return out


@dataclass(frozen=True, slots=True)
class TraceDetail:
    """A whole trace: its span tree (roots first), payloads and scores (``TraceDetail``)."""

    trace_id: str
    span_count: int
    roots: tuple[SpanNode, ...]
    scores: tuple[Score, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceDetail:
        return _build(
            cls,
            data,
            roots=tuple(SpanNode.from_json(r) for r in data.get("roots") or ()),
            scores=tuple(Score.from_json(s) for s in data.get("scores") or ()),
        )

    def spans(self) -> list[tuple[int, SpanNode]]:
        """Every span in tree order with its depth."""
        return [pair for root in self.roots for pair in root.walk()]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (None on the last page)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MetricBucket:
    """One bucket of a metrics series: its start and the metric values (None: no data)."""

    start: datetime
    values: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Metrics:
    """``GET /api/v1/metrics``: totals over [start, end) and, with a bucket, the series."""

    start: datetime
    end: datetime
    bucket_seconds: int | None
    summary: dict[str, float | None]
    series: tuple[MetricBucket, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        series = []
        for row in data.get("series") or ():
            values = {k: v for k, v in row.items() if k != "start"}
            series.append(MetricBucket(parse_time(row["start"]), values))
        return cls(
            start=parse_time(data["from"]),
            end=parse_time(data["to"]),
            bucket_seconds=data.get("bucket_seconds"),
            summary=dict(data.get("summary") or {}),
            series=tuple(series),
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its interval, sample size and interval method."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str

    @classmethod
    def maybe(cls, data: dict[str, Any] | None) -> Estimate | None:
        return None if data is None else _build(cls, data)


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (one-vs-rest) and its support."""

    label: str
    precision: Estimate
    recall: Estimate
    f1: Estimate
    support: int


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    """Accuracy, per-class and averaged figures and the confusion matrix (rows: true label)."""

    n: int
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    accuracy: Estimate
    per_class: tuple[ClassMetrics, ...]
    macro_precision: Estimate
    macro_recall: Estimate
    macro_f1: Estimate
    micro_f1: Estimate
    extra: dict[str, float]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassificationReport:
        est = {k: Estimate.maybe(data[k]) for k in ("accuracy", "macro_precision", "macro_recall")}
        est |= {k: Estimate.maybe(data[k]) for k in ("macro_f1", "micro_f1")}
        per_class = tuple(
            ClassMetrics(
                label=c["label"],
                precision=_build(Estimate, c["precision"]),
                recall=_build(Estimate, c["recall"]),
                f1=_build(Estimate, c["f1"]),
                support=c["support"],
            )
            for c in data.get("per_class") or ()
        )
        return _build(
            cls,
            data,
            **est,
            labels=tuple(data.get("labels") or ()),
            confusion=tuple(tuple(row) for row in data.get("confusion") or ()),
            per_class=per_class,
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class QualityReport:
    """``GET /api/v1/quality``: a classification report, a mean or a rate, by data type."""

    name: str
    data_type: str | None
    n: int
    mean: Estimate | None
    rate: Estimate | None
    classification: ClassificationReport | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualityReport:
        c = data.get("classification")
        return _build(
            cls,
            data,
            mean=Estimate.maybe(data.get("mean")),
            rate=Estimate.maybe(data.get("rate")),
            classification=ClassificationReport.from_json(c) if c is not None else None,
        )
