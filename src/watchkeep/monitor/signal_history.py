"""The history of the signal a monitor watches, in buckets, beside its thresholds.

What the console charts as "the watched signal with its threshold". Each kind shows what
is cheap to compute and honest about what the monitor compares:

- metric: the metric per bucket from one grouped query (``MetricQueries.series``, the
  same figures as ``GET /api/v1/metrics``), with the calls per bucket as ``n`` and the
  condition's thresholds.
- quality: the statistic per bucket with its interval (``low``/``high``) and the scores
  behind it as ``n``, from one scan of the range; the condition's thresholds.
- anomaly: the watched metric per bucket, as for metric monitors. Its threshold is learnt
  from the reference and applies to the anomaly score, not to the metric, so none is drawn.
- drift: the statistic at each recorded alert event (firing, re-notification, resolution)
  and at the last evaluation, the last per bucket, else null: evaluations are not stored
  one by one, and recomputing drift per bucket would rescan the reference each time. The
  threshold is the condition's, else the monitor's fixed ``threshold`` when it has one.
- resource: the peak sample per bucket, as the monitor takes it over its window.

Work is bounded: at most ``MAX_BUCKETS`` buckets over at most ``MAX_RANGE_S``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watchkeep.monitor.metric_queries import MetricQueries
from watchkeep.monitor.quality import QualityQueries
from watchkeep.monitor.repository import AlertHistory, MonitorRow
from watchkeep.monitor.resources import ResourceStore
from watchkeep.monitor.spec import MonitorSpec

NS = 1_000_000_000
MAX_BUCKETS = 200
MAX_RANGE_S = 31 * 86400
UNITS = {
    "requests": "calls",
    "errors": "calls",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "cost_usd": "USD",
    "request_rate": "calls/s",
    "error_rate": "ratio",
    "cpu_percent": "%",
    "gpu_utilization_percent": "%",
    "memory_rss_bytes": "bytes",
    "gpu_memory_used_bytes": "bytes",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One line of the chart."""

    label: str
    values: list[float | None]
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Threshold:
    """A horizontal line: the level ``label`` is reached when the value is ``op`` ``value``."""

    label: str
    value: float
    op: str = ">"


@dataclass(slots=True)
class Signal:
    """Buckets from ``x`` (their starts, Unix seconds), ``bucket_seconds`` wide."""

    x: list[int]
    bucket_seconds: int
    series: list[Series] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    n: list[int | None] = field(default_factory=list)


def unit_of(metric: str) -> str | None:
    """The unit a metric is counted in."""
    return "ms" if metric.endswith("_ms") else UNITS.get(metric)


def buckets_of(start_ns: int, end_ns: int, buckets: int) -> tuple[int, int]:
    """(bucket width in ns, whole seconds; count) covering [start, end) in at most ``buckets``;
    ``ValueError`` for an empty, too long or too finely cut range."""
    if end_ns <= start_ns:
        raise ValueError("'since' must be before 'until'")
    if end_ns - start_ns > MAX_RANGE_S * NS:
        raise ValueError("the range may span at most 31 days")
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be between 1 and {MAX_BUCKETS}")
    width = -(-(end_ns - start_ns) // buckets)
    width = -(-width // NS) * NS
    return width, -(-(end_ns - start_ns) // width)


def thresholds_of(spec: MonitorSpec) -> list[Threshold]:
    """The lines a value of the watched signal is judged against."""
    c = spec.condition
    if spec.kind == "anomaly":
        return []
    if c is not None:
        lines = [("warning", c.warning), ("alert", c.alert)]
        return [Threshold(label, value, c.op) for label, value in lines if value is not None]
    if spec.kind == "drift" and spec.threshold is not None:
        return [Threshold("alert", spec.threshold, ">")]
    return []


class SignalHistory:
    """Computes a monitor's signal over a range, one bounded query per series."""

    def __init__(
        self, metrics: MetricQueries, quality: QualityQueries, resources: ResourceStore, alerts: AlertHistory
    ) -> None:
        self._metrics = metrics
        self._quality = quality
        self._resources = resources
        self._alerts = alerts

    def of(self, row: MonitorRow, start_ns: int, end_ns: int, buckets: int) -> Signal:
        """The signal of the monitor ``row`` over [start, end) in at most ``buckets`` buckets."""
        width, count = buckets_of(start_ns, end_ns, buckets)
        starts = [start_ns + i * width for i in range(count)]
        signal = Signal([s // NS for s in starts], width // NS, thresholds=thresholds_of(row.spec))
        if row.spec.kind in ("metric", "anomaly"):
            self._metric(signal, row.project_id, row.spec, start_ns, end_ns, width)
        elif row.spec.kind == "quality":
            self._quality_series(signal, row.project_id, row.spec, start_ns, end_ns, width)
        elif row.spec.kind == "drift":
            self._drift(signal, row, starts, width)
        else:
            self._resource(signal, row.spec, starts, width)
        return signal

    def _metric(
        self, signal: Signal, project_id: int, spec: MonitorSpec, start: int, end: int, width: int
    ) -> None:
        assert spec.metric is not None
        f = spec.filter.to_metric_filter()
        rows = self._metrics.series(project_id, f, start, end, width, (spec.metric, "requests"))
        signal.series.append(Series(spec.metric, [r.get(spec.metric) for r in rows], unit_of(spec.metric)))
        signal.n = [int(r.get("requests") or 0) for r in rows]

    def _quality_series(
        self, signal: Signal, project_id: int, spec: MonitorSpec, start: int, end: int, width: int
    ) -> None:
        assert spec.score is not None
        reports = self._quality.report_series(
            project_id, spec.score, start, end, width, model=spec.filter.model
        )
        estimates = [r.value(spec.statistic) for r in reports]
        signal.series = [
            Series(spec.statistic, [e.value if e else None for e in estimates]),
            Series("low", [e.low if e else None for e in estimates]),
            Series("high", [e.high if e else None for e in estimates]),
        ]
        signal.n = [e.n if e else 0 for e in estimates]

    def _drift(self, signal: Signal, row: MonitorRow, starts: list[int], width: int) -> None:
        values: list[float | None] = [None] * len(starts)
        start, end = starts[0], starts[-1] + width
        points = self._alerts.values(row.project_id, row.id, start, end)
        last = row.last_evaluated_at_unix_nano
        if last is not None and row.last_value is not None and start <= last < end:
            points.append((last, row.last_value))
        for at, value in sorted(points):
            values[(at - start) // width] = value
        signal.series.append(Series(row.spec.method if row.spec.method != "auto" else "statistic", values))
        signal.n = [None] * len(starts)

    def _resource(self, signal: Signal, spec: MonitorSpec, starts: list[int], width: int) -> None:
        assert spec.metric is not None
        peaks = [self._resources.peak(spec.metric, spec.process, s, s + width) for s in starts]
        signal.series.append(Series(spec.metric, [p for _, p in peaks], unit_of(spec.metric)))
        signal.n = [n for n, _ in peaks]
