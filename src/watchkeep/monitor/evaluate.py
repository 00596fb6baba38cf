"""Turns a monitor spec into an observation: a value and the level it reaches now.

Every monitor of one worker pass is evaluated against the same "now", and window
queries are memoised per pass by (project, filter, window, metric group), and drift
monitors' current values by (project, filter, window) and feature family (``plan`` notes
which features the pass's monitors watch, loaded by one scan), so a hundred monitors
over the same calls cost one scan per distinct window, not one per monitor.
Anomaly monitors keep the closed reference buckets of their series across passes and
restarts (``SeriesBuckets``): a pass only queries the buckets that are new or still open,
and a scan of missing closed buckets is charged to the pass's reference budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from watchkeep.monitor.anomaly import detect
from watchkeep.monitor.drift_service import DriftService, ReferenceSpec, budgeted
from watchkeep.monitor.features import FeatureRequest
from watchkeep.monitor.metric_queries import PERCENTILE_METRICS, MetricFilter, MetricQueries
from watchkeep.monitor.quality import QualityQueries
from watchkeep.monitor.resources import ResourceStore
from watchkeep.monitor.series import SeriesBuckets, series_key
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.monitor.state import State

NS = 1_000_000_000
SETTLE_NS = 300 * NS  # a reference bucket this long closed is taken as final


@dataclass(frozen=True, slots=True)
class Observation:
    """What one evaluation saw."""

    level: State
    value: float | None
    message: str
    samples: int


@dataclass(slots=True)
class PassCache:
    """Query results shared by the monitors of one pass."""

    entries: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    hits: int = 0
    # drift features the pass's monitors watch, by (project, filter, window): loaded together
    features: dict[tuple[Any, ...], set[str]] = field(default_factory=dict)

    def get(self, key: tuple[Any, ...], compute: Any) -> Any:
        if key in self.entries:
            self.hits += 1
            return self.entries[key]
        value = compute()
        self.entries[key] = value
        return value


def _group(metric: str) -> tuple[str, ...]:
    for _, names in PERCENTILE_METRICS.values():
        if metric in names:
            return names
    return ("requests", "errors", "input_tokens", "output_tokens", "cost_usd", "request_rate", "error_rate")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


class MonitorEvaluator:
    """Evaluates monitor specs against the store."""

    def __init__(
        self, metrics: MetricQueries, quality: QualityQueries, drift: DriftService, resources: ResourceStore
    ) -> None:
        self._metrics = metrics
        self._quality = quality
        self._drift = drift
        self._resources = resources
        self._series = SeriesBuckets(metrics.engine)

    def evaluate(
        self, project_id: int, spec: MonitorSpec, now_ns: int, cache: PassCache | None = None
    ) -> Observation:
        """The observation of ``spec`` at ``now_ns``."""
        cache = cache if cache is not None else PassCache()
        handler = {
            "metric": self._metric,
            "quality": self._quality_level,
            "drift": self._drift_level,
            "anomaly": self._anomaly,
            "resource": self._resource,
        }[spec.kind]
        return handler(project_id, spec, now_ns, cache)

    def plan(self, cache: PassCache, monitors: list[tuple[int, MonitorSpec]]) -> None:
        """Note which drift features the pass will load, so one scan per family serves them all."""
        for project_id, spec in monitors:
            if spec.kind == "drift" and spec.feature is not None:
                key = (project_id, spec.filter.to_metric_filter(), spec.window)
                cache.features.setdefault(key, set()).add(spec.feature)

    def _current(
        self, project_id: int, spec: MonitorSpec, req: FeatureRequest, start: int, now: int, cache: PassCache
    ) -> Any:
        """The current window's values of a drift feature, loaded with its planned family members."""
        family = self._drift.loader.family(req.feature)
        if not family:
            return cache.get(
                ("feature", project_id, req, start, now),
                lambda: self._drift.loader.load(project_id, req, start, now),
            )
        planned = cache.features.get((project_id, req.filter, spec.window), set())
        wanted = tuple(f for f in family if f in planned or f == req.feature)
        columns = cache.get(
            ("features", project_id, req.filter, wanted, start, now),
            lambda: self._drift.loader.load_many(project_id, req.filter, wanted, start, now),
        )
        return columns[req.feature]

    def _window(
        self, project_id: int, f: MetricFilter, start: int, end: int, metric: str, cache: PassCache
    ) -> dict[str, float | None]:
        group = _group(metric)
        key = ("window", project_id, f.key(), start, end, group)
        result: dict[str, float | None] = cache.get(
            key, lambda: self._metrics.window(project_id, f, start, end, group)
        )
        return result

    def _metric(self, project_id: int, spec: MonitorSpec, now: int, cache: PassCache) -> Observation:
        assert spec.metric is not None
        assert spec.condition is not None
        start = now - int(spec.window * NS)
        row = self._window(project_id, spec.filter.to_metric_filter(), start, now, spec.metric, cache)
        if "requests" not in row:
            counts = self._window(project_id, spec.filter.to_metric_filter(), start, now, "requests", cache)
            row = {**counts, **row}
        n = int(row.get("requests") or 0)
        value = row.get(spec.metric)
        if n < spec.min_samples or value is None:
            return Observation(State.NO_DATA, value, f"{n} calls in the window (need {spec.min_samples})", n)
        level = State(spec.condition.level(value))
        return Observation(level, value, f"{spec.metric} = {_fmt(value)} over {n} calls", n)

    def _quality_level(self, project_id: int, spec: MonitorSpec, now: int, cache: PassCache) -> Observation:
        assert spec.score is not None
        assert spec.condition is not None
        start = now - int(spec.window * NS)
        key = ("quality", project_id, spec.score, spec.filter.model, start, now)
        score, model = spec.score, spec.filter.model
        report = cache.get(key, lambda: self._quality.report(project_id, score, start, now, model=model))
        est = report.value(spec.statistic)
        n = est.n if est is not None else 0
        if est is None or est.value is None or n < spec.min_samples:
            return Observation(State.NO_DATA, None, f"{n} labelled scores (need {spec.min_samples})", n)
        interval = f" [{_fmt(est.low)}, {_fmt(est.high)}]" if est.low is not None else ""
        level = State(spec.condition.level(est.value))
        message = f"{spec.score} {spec.statistic} = {_fmt(est.value)}{interval} over {n} scores"
        return Observation(level, est.value, message, n)

    def reference_window(self, spec: MonitorSpec, now: int) -> ReferenceSpec:
        """The reference of a drift monitor at ``now``: pinned, or aligned to ``refresh``."""
        ref = spec.reference
        if ref.values is not None:
            return ReferenceSpec(values=tuple(ref.values))
        refresh = int(ref.refresh * NS)
        end = (now - int(spec.window * NS) - int(ref.offset * NS)) // refresh * refresh
        return ReferenceSpec(start_ns=end - int(ref.duration * NS), end_ns=end)

    def _drift_level(self, project_id: int, spec: MonitorSpec, now: int, cache: PassCache) -> Observation:
        assert spec.feature is not None
        req = FeatureRequest(spec.feature, spec.filter.to_metric_filter(), spec.score_name)
        start = now - int(spec.window * NS)
        current = self._current(project_id, spec, req, start, now, cache)
        report = self._drift.compute(
            project_id,
            req,
            self.reference_window(spec, now),
            start,
            now,
            method=spec.method,
            threshold=spec.threshold,
            current=current,
        )
        r = report.result
        n = r.current_n
        if n < max(spec.min_samples, 1) or r.reference_n == 0 or math.isnan(r.statistic):
            return Observation(State.NO_DATA, None, f"{n} current and {r.reference_n} reference values", n)
        if spec.condition is not None:
            level = State(spec.condition.level(r.statistic))
        else:
            level = State.ALERT if r.drifted else State.OK
        verdict = "drift" if r.drifted else "no drift"
        message = (
            f"{spec.feature}: {verdict} ({r.method} = {_fmt(r.statistic)}, threshold {_fmt(r.threshold)}, "
            f"n = {r.reference_n} vs {n})"
        )
        return Observation(level, r.statistic, message, n)

    def _anomaly(self, project_id: int, spec: MonitorSpec, now: int, cache: PassCache) -> Observation:
        assert spec.metric is not None
        bucket = int(spec.bucket * NS)
        current_buckets = max(1, int(spec.window // spec.bucket))
        reference_buckets = max(3, int(spec.reference.duration // spec.bucket))
        end = now // bucket * bucket
        start = end - (current_buckets + reference_buckets) * bucket
        f = spec.filter.to_metric_filter()
        group = _group(spec.metric)
        frozen_before = min(end - current_buckets * bucket, now - SETTLE_NS)
        series = series_key(f.key(), bucket)
        starts = range(start, end, bucket)
        known = self._series.closed(project_id, series, group, starts, frozen_before)
        first = next((b for b in starts if b not in known), end)
        fresh: dict[int, dict[str, float | None]] = {}
        if first < end:
            key = ("series", project_id, f.key(), first, end, bucket, group)

            def scan() -> list[dict[str, float | None]]:
                return self._metrics.series(project_id, f, first, end, bucket, group)

            # Closed reference buckets missing everywhere cost a long scan: charged to the
            # pass's budget like a drift reference; the unsettled tail of a warm series is not.
            reference = first + bucket <= frozen_before
            rows = cache.get(key, (lambda: budgeted(scan, f"series of {spec.metric}")) if reference else scan)
            for r in rows:
                fresh[int(r["start_unix_nano"] or 0)] = r
            self._series.keep(
                project_id,
                series,
                group,
                bucket,
                {b: r for b, r in fresh.items() if b + bucket <= frozen_before and b not in known},
            )
        values = [(fresh.get(b) or known.get(b) or {}).get(spec.metric) for b in starts]
        ref, cur = values[:reference_buckets], values[reference_buckets:]
        present = sum(v is not None for v in cur)
        if present < max(spec.min_samples, 1):
            return Observation(State.NO_DATA, None, f"{present} current buckets with data", present)
        result = detect(ref, cur, spec.anomaly_method, alpha=spec.alpha)
        if math.isnan(result.score):
            return Observation(State.NO_DATA, None, "too little reference data", present)
        if spec.condition is not None:
            level = State(spec.condition.level(abs(result.score)))
        else:
            level = State.ALERT if result.anomalous else State.OK
        message = (
            f"{spec.metric}: {result.method} score {_fmt(result.score)} "
            f"(threshold {_fmt(result.threshold)} learnt from {result.reference_n} buckets)"
        )
        return Observation(level, result.score, message, present)

    def _resource(self, project_id: int, spec: MonitorSpec, now: int, cache: PassCache) -> Observation:
        assert spec.metric is not None
        assert spec.condition is not None
        start = now - int(spec.window * NS)
        n, peak = self._resources.peak(spec.metric, spec.process, start, now)
        if n < max(spec.min_samples, 1) or peak is None:
            return Observation(State.NO_DATA, None, f"{n} samples of {spec.metric}", n)
        level = State(spec.condition.level(peak))
        where = f" of {spec.process}" if spec.process else ""
        return Observation(level, peak, f"peak {spec.metric}{where} = {_fmt(peak)} over {n} samples", n)
