"""Operational metrics of LLM calls: rate, errors, latency and TTFT percentiles (p50, p90,
p95, p99), tokens, cost.

One grouped aggregate query per window (buckets are integer divisions of the start
time, so both databases group on an indexed range scan); percentiles are computed by
PostgreSQL's ``percentile_cont`` where available, otherwise only the one needed column
of the window is fetched and numpy takes the quantiles per bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Engine, Integer, case, func, literal_column, or_, select, tuple_
from sqlalchemy.sql import ColumnElement

from watchkeep import semconv as sc
from watchkeep.store.engine import is_sqlite
from watchkeep.store.tables import spans
from watchkeep.store.trace_attributes import span_attribute_is, span_has_tags

STATUS_ERROR = 2
TOTAL = -1  # the whole window's key among per-bucket quantiles
QUANTILES = (0.5, 0.9, 0.95, 0.99)
COUNTER_METRICS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
RATE_METRICS = ("request_rate", "error_rate")
PERCENTILE_METRICS = {
    "latency": (
        spans.c.duration_ms,
        ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"),
    ),
    "ttft": (spans.c.time_to_first_token_ms, ("ttft_p50_ms", "ttft_p90_ms", "ttft_p95_ms", "ttft_p99_ms")),
}
METRIC_NAMES: tuple[str, ...] = (
    *COUNTER_METRICS,
    *RATE_METRICS,
    *(name for _, names in PERCENTILE_METRICS.values() for name in names),
)


class UnknownMetric(ValueError):
    """A metric name this module does not compute."""


@dataclass(frozen=True, slots=True)
class MetricFilter:
    """What the LLM calls of a query are narrowed to (all optional, combined with AND)."""

    model: str | None = None
    model_version: str | None = None
    prompt_version: str | None = None
    route: str | None = None
    environment: str | None = None
    release: str | None = None
    provider: str | None = None
    tags: tuple[str, ...] = ()  # the trace has every one of them

    def key(self) -> tuple[str | None, ...]:
        """A hashable identity, for caching a window's result within one pass."""
        return (
            self.model,
            self.model_version,
            self.prompt_version,
            self.route,
            self.environment,
            self.release,
            self.provider,
            *(("tags", *sorted(set(self.tags))) if self.tags else ()),
        )


def llm_span_conditions(
    project_id: int, f: MetricFilter, start_ns: int, end_ns: int
) -> list[ColumnElement[bool]]:
    """The WHERE clause selecting a project's LLM-call spans in [start, end) matching ``f``.

    Environment, release and tags are trace attributes: a span matches on its own value,
    else its trace's (``store.trace_attributes``), whichever export request carried them.
    """
    c = spans.c
    cond: list[ColumnElement[bool]] = [
        c.project_id == project_id,
        c.start_time_unix_nano >= start_ns,
        c.start_time_unix_nano < end_ns,
    ]
    if f.model is not None:
        cond.append(or_(c.request_model == f.model, c.response_model == f.model))
    else:
        cond.append(or_(c.request_model.is_not(None), c.response_model.is_not(None)))
    for column, value in (
        (c.model_version, f.model_version),
        (c.prompt_version, f.prompt_version),
        (c.provider, f.provider),
    ):
        if value is not None:
            cond.append(column == value)
    for name, wanted in (("environment", f.environment), ("release", f.release)):
        if wanted is not None:
            cond.append(span_attribute_is(name, wanted))
    if f.tags:
        cond.append(span_has_tags(f.tags))
    if f.route is not None:
        cond.append(c.attributes[sc.WK_ROUTE].as_string() == f.route)
    return cond


def grouped_quantiles(
    groups: np.ndarray, values: np.ndarray, quantiles: Iterable[float] = QUANTILES
) -> dict[int, list[float]]:
    """Linear-interpolated quantiles of ``values`` per group id (as ``percentile_cont``)."""
    qs = list(quantiles)
    keep = ~np.isnan(values)
    groups, values = groups[keep], values[keep]
    if values.size == 0:
        return {}
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    cuts = np.flatnonzero(np.diff(groups)) + 1
    out: dict[int, list[float]] = {}
    for g, chunk in zip(groups[np.r_[0, cuts]], np.split(values, cuts), strict=True):
        out[int(g)] = [float(v) for v in np.quantile(chunk, qs)]
    return out


def _metrics_needed(metrics: Iterable[str] | None) -> set[str]:
    wanted = set(METRIC_NAMES if metrics is None else metrics)
    unknown = wanted - set(METRIC_NAMES)
    if unknown:
        raise UnknownMetric(f"unknown metric(s) {sorted(unknown)}; known: {', '.join(METRIC_NAMES)}")
    return wanted


class MetricQueries:
    """Bucketed operational metrics for one project at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine.url.drivername)

    @property
    def engine(self) -> Engine:
        """The store queried (also where closed series buckets persist)."""
        return self._engine

    def window(
        self,
        project_id: int,
        f: MetricFilter,
        start_ns: int,
        end_ns: int,
        metrics: Iterable[str] | None = None,
    ) -> dict[str, float | None]:
        """Every metric (or those named) over the whole window [start, end)."""
        rows = self.series(project_id, f, start_ns, end_ns, max(1, end_ns - start_ns), metrics)
        return rows[0]

    def series(
        self,
        project_id: int,
        f: MetricFilter,
        start_ns: int,
        end_ns: int,
        bucket_ns: int,
        metrics: Iterable[str] | None = None,
    ) -> list[dict[str, float | None]]:
        """One row per bucket of ``bucket_ns`` from ``start_ns`` (empty buckets included)."""
        return self._series(project_id, f, start_ns, end_ns, bucket_ns, metrics, total=False)[0]

    def series_and_total(
        self,
        project_id: int,
        f: MetricFilter,
        start_ns: int,
        end_ns: int,
        bucket_ns: int,
        metrics: Iterable[str] | None = None,
    ) -> tuple[list[dict[str, float | None]], dict[str, float | None]]:
        """``series`` and the whole window's row (as ``window`` gives it) from the same scans:
        counters are the buckets' sums, the window's percentiles are taken in the same pass."""
        rows, total = self._series(project_id, f, start_ns, end_ns, bucket_ns, metrics, total=True)
        assert total is not None
        return rows, total

    def _series(
        self,
        project_id: int,
        f: MetricFilter,
        start_ns: int,
        end_ns: int,
        bucket_ns: int,
        metrics: Iterable[str] | None,
        *,
        total: bool,
    ) -> tuple[list[dict[str, float | None]], dict[str, float | None] | None]:
        if end_ns <= start_ns or bucket_ns <= 0:
            raise ValueError("need start < end and a positive bucket")
        wanted = _metrics_needed(metrics)
        n_buckets = -(-(end_ns - start_ns) // bucket_ns)
        if n_buckets > 10_000:
            raise ValueError("at most 10,000 buckets per query")
        cond = llm_span_conditions(project_id, f, start_ns, end_ns)
        # Literal integers (ours, not a caller's text): PostgreSQL then matches the GROUPING
        # SETS expression to the selected one, which distinct bind parameters would defeat.
        bucket = (spans.c.start_time_unix_nano - _int(start_ns)) // _int(bucket_ns)
        kinds = [kind for kind, (_, names) in PERCENTILE_METRICS.items() if wanted.intersection(names)]
        with self._engine.connect() as conn:
            scan = self._scan_sqlite if self._sqlite else self._scan_postgres
            counted, quantiles = scan(conn, cond, bucket, kinds, total=total)
        out = [
            _row(
                start_ns + b * bucket_ns,
                bucket_ns,
                counted.get(b),
                {kind: quantiles[kind].get(b) for kind in kinds},
                wanted,
            )
            for b in range(n_buckets)
        ]
        if not total:
            return out, None
        summed = Counts(*(sum(getattr(r, k) or 0 for r in counted.values()) for k in Counts._fields))
        whole = {kind: quantiles[kind].get(TOTAL) for kind in kinds}
        return out, _row(start_ns, end_ns - start_ns, summed, whole, wanted)

    @staticmethod
    def _scan_postgres(
        conn: Any, cond: list[ColumnElement[bool]], bucket: Any, kinds: list[str], *, total: bool
    ) -> tuple[dict[int, Counts], dict[str, dict[int, list[float]]]]:
        """Counters and percentiles per bucket from one scan of the window (ADR 0026): the
        percentiles are aggregates FILTERed to their non-null values, not scans of their own."""
        c = spans.c
        pcts = [
            func.percentile_cont(list(QUANTILES))
            .within_group(PERCENTILE_METRICS[kind][0])
            .filter(PERCENTILE_METRICS[kind][0].is_not(None))
            .label(kind)
            for kind in kinds
        ]
        query = select(
            bucket.label("bucket"),
            func.count().label("requests"),
            func.sum(case((c.status_code == STATUS_ERROR, 1), else_=0)).label("errors"),
            func.sum(c.input_tokens).label("input_tokens"),
            func.sum(c.output_tokens).label("output_tokens"),
            func.sum(c.cost_usd).label("cost_usd"),
            *pcts,
        ).where(*cond)
        # The empty grouping set yields the window's row (NULL bucket), even when no call matched.
        query = query.group_by(func.grouping_sets(bucket, tuple_()) if total and kinds else bucket)
        counted: dict[int, Counts] = {}
        quantiles: dict[str, dict[int, list[float]]] = {kind: {} for kind in kinds}
        for r in conn.execute(query):
            key = TOTAL if r.bucket is None else int(r.bucket)
            if key != TOTAL:
                counted[key] = Counts(r.requests, r.errors, r.input_tokens, r.output_tokens, r.cost_usd)
            for kind in kinds:
                if r._mapping[kind] is not None:
                    quantiles[kind][key] = [float(v) for v in r._mapping[kind]]
        return counted, quantiles

    @staticmethod
    def _scan_sqlite(
        conn: Any, cond: list[ColumnElement[bool]], bucket: Any, kinds: list[str], *, total: bool
    ) -> tuple[dict[int, Counts], dict[str, dict[int, list[float]]]]:
        """The window's rows in one scan, as plain tuples off the DB-API cursor flattened
        through ``np.fromiter`` (SQLAlchemy's row objects cost more than the scan), then
        counters by ``np.bincount`` and quantiles by numpy per bucket."""
        c = spans.c
        columns = [
            bucket,
            c.status_code,
            c.input_tokens,
            c.output_tokens,
            c.cost_usd,
            *(PERCENTILE_METRICS[kind][0] for kind in kinds),
        ]
        result = conn.execute(select(*columns).where(*cond))
        rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
        quantiles: dict[str, dict[int, list[float]]] = {kind: {} for kind in kinds}
        if not rows:
            return {}, quantiles
        data = np.fromiter(
            (np.nan if v is None else v for v in chain.from_iterable(rows)), dtype=float
        ).reshape(-1, len(columns))
        groups = data[:, 0].astype(np.int64)
        present = np.unique(groups)

        def per_bucket(values: np.ndarray) -> np.ndarray:
            return np.bincount(groups, weights=np.nan_to_num(values))[present]

        requests = np.bincount(groups)[present]
        errors = per_bucket((data[:, 1] == STATUS_ERROR).astype(float))
        sums = [per_bucket(data[:, i]) for i in (2, 3, 4)]
        counted = {
            int(b): Counts(int(requests[i]), int(errors[i]), sums[0][i], sums[1][i], sums[2][i])
            for i, b in enumerate(present)
        }
        for offset, kind in enumerate(kinds, start=5):
            values = data[:, offset]
            quantiles[kind] = grouped_quantiles(groups, values)
            kept = values[~np.isnan(values)]
            if total and kept.size:
                quantiles[kind][TOTAL] = [float(v) for v in np.quantile(kept, list(QUANTILES))]
        return counted, quantiles


def _int(value: int) -> ColumnElement[int]:
    return literal_column(str(int(value)), Integer)


class Counts(NamedTuple):
    """A bucket's counters as the aggregate query returns them."""

    requests: int | None
    errors: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


def _row(
    start_ns: int,
    width_ns: int,
    r: Counts | None,
    quantiles: dict[str, list[float] | None],
    wanted: set[str],
) -> dict[str, float | None]:
    """One bucket's (or the window's) metrics, keeping only those ``wanted``."""
    requests = int(r.requests or 0) if r is not None else 0
    errors = int(r.errors or 0) if r is not None else 0
    row: dict[str, float | None] = {
        "start_unix_nano": float(start_ns),
        "requests": float(requests),
        "errors": float(errors),
        "input_tokens": float(r.input_tokens or 0) if r is not None else 0.0,
        "output_tokens": float(r.output_tokens or 0) if r is not None else 0.0,
        "cost_usd": float(r.cost_usd or 0.0) if r is not None else 0.0,
        "request_rate": requests / (width_ns / 1e9),
        "error_rate": errors / requests if requests else None,
    }
    for kind, values in quantiles.items():
        for i, name in enumerate(PERCENTILE_METRICS[kind][1]):
            row[name] = values[i] if values is not None else None
    return {k: v for k, v in row.items() if k == "start_unix_nano" or k in wanted}
