"""Operational metrics of LLM calls: rate, errors, latency and TTFT percentiles (p50, p90,
p95, p99), tokens, cost.

PostgreSQL aggregates each bucket over its own range of the covering start-time index
(an index-only scan, no sort of the window's rows) and takes exact percentiles with
``percentile_cont``; SQLite fetches the needed columns of the window in one pass and numpy
takes counters and quantiles per bucket (ADR 0026).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import BigInteger, Engine, Integer, case, cast, func, literal_column, or_, select, true
from sqlalchemy.sql import ColumnElement

from watchkeep import semconv as sc
from watchkeep.store.engine import is_sqlite
from watchkeep.store.tables import spans
from watchkeep.store.trace_attributes import span_attribute_is, span_has_tags

STATUS_ERROR = 2
TOTAL = -1  # the whole window's key among per-bucket quantiles
QUANTILES = (0.5, 0.9, 0.95, 0.99)
# Sort memory of one metrics query on PostgreSQL: percentile_cont sorts a window's values
# (a day of a 10M-span store: 333k of each) in memory instead of in temporary files.
POSTGRES_WORK_MEM = "64MB"
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
        kinds = [kind for kind, (_, names) in PERCENTILE_METRICS.items() if wanted.intersection(names)]
        if self._sqlite:
            bucket = (spans.c.start_time_unix_nano - _int(start_ns)) // _int(bucket_ns)
            with self._engine.connect() as conn:
                counted, quantiles = self._scan_sqlite(conn, cond, bucket, kinds, total=total)
        else:
            counted, quantiles = self._scan_postgres(
                cond, (start_ns, end_ns), bucket_ns, n_buckets, kinds, total=total
            )
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

    def _scan_postgres(
        self,
        cond: list[ColumnElement[bool]],
        span: tuple[int, int],
        bucket_ns: int,
        n_buckets: int,
        kinds: list[str],
        *,
        total: bool,
    ) -> tuple[dict[int, Counts], dict[str, dict[int, list[float]]]]:
        """Counters and percentiles per bucket, each bucket an aggregate over its own
        index range (ADR 0026): grouping the window's rows by bucket made PostgreSQL sort
        them all first, and percentiles over the whole window besides fed every value to
        two sorts. A window of several buckets whose total percentiles are wanted takes
        those in a second query, run at the same time on another connection."""
        if n_buckets == 1:
            rows = self._run_postgres(_aggregate(cond, kinds, counters=True))
            counted, quantiles = _read_rows(rows, kinds, bucket=0)
            for kind in kinds:
                if 0 in quantiles[kind]:
                    quantiles[kind][TOTAL] = quantiles[kind][0]
            return counted, quantiles
        # bigint bucket numbers: n * bucket_ns overflows a 32-bit integer from the third second
        n = (
            func.generate_series(cast(0, BigInteger), cast(n_buckets - 1, BigInteger))
            .table_valued("n")
            .render_derived(name="b")
        )
        start = spans.c.start_time_unix_nano
        start_ns, end_ns = span
        low = _int(start_ns) + n.c.n * _int(bucket_ns)  # below end_ns: n < n_buckets
        # min(low + bucket, end): the last bucket's own end may pass 2^63 ns (a window ending
        # in 2262), which PostgreSQL's bigint refuses
        high = func.least(low, _int(end_ns - bucket_ns)) + _int(bucket_ns)
        per_bucket = _aggregate(
            [*cond, start >= low, start < high],
            kinds,
            counters=True,
        ).lateral("a")
        buckets = select(n.c.n.label("bucket"), per_bucket).select_from(n.join(per_bucket, true()))
        if not (total and kinds):
            return _read_rows(self._run_postgres(buckets), kinds)
        with ThreadPoolExecutor(1) as other:
            whole = other.submit(self._run_postgres, _aggregate(cond, kinds, counters=False))
            counted, quantiles = _read_rows(self._run_postgres(buckets), kinds)
            _, window = _read_rows(whole.result(), kinds, bucket=TOTAL)
        for kind in kinds:
            quantiles[kind].update(window[kind])
        return counted, quantiles

    def _run_postgres(self, query: Any) -> list[Any]:
        with self._engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'")
            return list(conn.execute(query))

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


def _aggregate(cond: list[ColumnElement[bool]], kinds: list[str], *, counters: bool) -> Any:
    """One ungrouped aggregate of the spans matching ``cond``: the counters (if asked) and
    the percentiles of ``kinds``, each over its non-null values."""
    c = spans.c
    columns = [
        func.percentile_cont(list(QUANTILES))
        .within_group(PERCENTILE_METRICS[kind][0])
        .filter(PERCENTILE_METRICS[kind][0].is_not(None))
        .label(kind)
        for kind in kinds
    ]
    if counters:
        columns += [
            func.count().label("requests"),
            func.sum(case((c.status_code == STATUS_ERROR, 1), else_=0)).label("errors"),
            func.sum(c.input_tokens).label("input_tokens"),
            func.sum(c.output_tokens).label("output_tokens"),
            func.sum(c.cost_usd).label("cost_usd"),
        ]
    return select(*columns).where(*cond)


def _read_rows(
    rows: list[Any], kinds: list[str], bucket: int | None = None
) -> tuple[dict[int, Counts], dict[str, dict[int, list[float]]]]:
    """Counters (of buckets with calls) and percentiles keyed by bucket: each row's own
    ``bucket`` column, or ``bucket`` for all rows."""
    counted: dict[int, Counts] = {}
    quantiles: dict[str, dict[int, list[float]]] = {kind: {} for kind in kinds}
    for r in rows:
        key = int(r.bucket) if bucket is None else bucket
        m = r._mapping
        if m.get("requests"):
            counted[key] = Counts(r.requests, r.errors, r.input_tokens, r.output_tokens, r.cost_usd)
        for kind in kinds:
            if m[kind] is not None:
                quantiles[kind][key] = [float(v) for v in m[kind]]
    return counted, quantiles


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
