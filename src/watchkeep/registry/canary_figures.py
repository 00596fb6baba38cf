"""A window of a route's spans as one canary batch: per arm, per metric, in SQL aggregates.

The worker looks at the spans stored in ``(watermark, upto]`` (by the store's ingest
clock, so a long call that started before the watermark still counts once it lands)
where ``upto = now - SETTLE_NS``: the settle lets a commit stamped just before ``now``
become visible before the window closes over it. Each look is bounded to
``MAX_WINDOW_NS`` of ingest time, so a canary that fell behind catches up in steps, and
reads the route's spans through its start-time index (a span that started more than
``LOOKBACK_NS`` before the window, e.g. replayed from a gateway spool much later, is not
counted).

Arms. Spans of the route (``request_model``) whose ``model_version`` is
``NAME@baseline`` or ``NAME@candidate``. Live mode: both arms are served calls (shadow
copies, marked ``watchkeep.gateway.shadow_of``, are left out). Shadow mode: the
baseline is the served calls of the baseline version and the candidate the shadow
copies answered by the candidate version.

Metrics (names accepted in a policy; see ``metric_rule``): ``error_rate`` (status
ERROR), ``latency_ms``, ``ttft_ms``, ``cost_usd`` and ``score:NAME`` for feedback or
an online evaluator's score joined by trace and span id (a proportion: the share of
values > 0, i.e. passed booleans; a mean: the mean numeric value).

Moments come from COUNT, SUM and SUM of squares, never from the rows themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, not_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Boolean

from watchkeep.registry.canary import CanaryPolicy, Counts, MetricRule, Moments, Sample
from watchkeep.semconv import WK_GATEWAY_SHADOW_OF
from watchkeep.store.tables import scores, spans

NS = 1_000_000_000
SETTLE_NS = 2 * NS
MAX_WINDOW_NS = 3600 * NS
# Spans are found through the (project, route, start time) index: a span counts if it was
# stored in the window and started at most this long before the window opened.
LOOKBACK_NS = 6 * 3600 * NS
STATUS_ERROR = 2  # OTel's STATUS_CODE_ERROR
SCORE_PREFIX = "score:"

# name -> (kind, direction, default tolerance) of the span metrics.
SPAN_METRICS: dict[str, tuple[str, str, float]] = {
    "error_rate": ("proportion", "lower_is_better", 0.02),
    "latency_ms": ("mean", "lower_is_better", 100.0),
    "ttft_ms": ("mean", "lower_is_better", 100.0),
    "cost_usd": ("mean", "lower_is_better", 0.001),
}
SCORE_TOLERANCE = 0.05
_COLUMNS = {
    "latency_ms": spans.c.duration_ms,
    "ttft_ms": spans.c.time_to_first_token_ms,
    "cost_usd": spans.c.cost_usd,
}


def metric_rule(
    name: str, *, kind: str | None = None, direction: str | None = None, tolerance: float | None = None
) -> MetricRule:
    """The rule of a metric name, with its defaults; ``ValueError`` for a name not measured."""
    if name in SPAN_METRICS:
        k, d, t = SPAN_METRICS[name]
    elif name.startswith(SCORE_PREFIX) and len(name) > len(SCORE_PREFIX):
        k, d, t = "proportion", "higher_is_better", SCORE_TOLERANCE
    else:
        raise ValueError(
            f"unknown canary metric {name!r}: use error_rate, latency_ms, ttft_ms, cost_usd or score:NAME"
        )
    if kind is not None and name in SPAN_METRICS and kind != k:
        raise ValueError(f"metric {name!r} is a {k}")
    return MetricRule(name, kind or k, direction or d, tolerance if tolerance is not None else t)  # type: ignore[arg-type]


def default_policy(scores_: tuple[str, ...] = ()) -> CanaryPolicy:
    """error_rate and latency_ms, plus the pass rate of each named score."""
    names = ("error_rate", "latency_ms", *(f"{SCORE_PREFIX}{s}" for s in scores_))
    return CanaryPolicy(tuple(metric_rule(n) for n in names))


class HasAttribute(ColumnElement[bool]):
    """The JSON attributes have ``key`` (any value)."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, attributes: ColumnElement[Any], key: str) -> None:
        self.attributes = attributes
        self.attr_key = key


@compiles(HasAttribute, "sqlite")
def _has_sqlite(element: HasAttribute, compiler: SQLCompiler, **kw: Any) -> str:
    attributes = compiler.process(element.attributes, **kw)
    path = compiler.process(literal('$."' + element.attr_key.replace('"', "") + '"'), **kw)
    return f"(json_type({attributes}, {path}) IS NOT NULL)"


@compiles(HasAttribute, "postgresql")
def _has_postgres(element: HasAttribute, compiler: SQLCompiler, **kw: Any) -> str:
    attributes = compiler.process(element.attributes, **kw)
    key = compiler.process(literal(element.attr_key), **kw)
    return f"COALESCE((({attributes}) -> {key}) IS NOT NULL, false)"


@dataclass(frozen=True, slots=True)
class Window:
    """Which spans one look counts."""

    project_id: int
    route: str
    baseline: str  # "NAME@N"
    candidate: str
    shadow_mode: bool
    after_ns: int
    upto_ns: int


def window_end(watermark_ns: int, now_ns: int) -> int:
    """Where a look that starts at ``now_ns`` stops (never before the watermark)."""
    return max(watermark_ns, min(now_ns - SETTLE_NS, watermark_ns + MAX_WINDOW_NS))


def _arm(w: Window) -> ColumnElement[Any]:
    shadow = HasAttribute(spans.c.attributes, WK_GATEWAY_SHADOW_OF)
    candidate_shadow = shadow if w.shadow_mode else not_(shadow)
    return case(
        (and_(spans.c.model_version == w.baseline, not_(shadow)), literal("b")),
        (and_(spans.c.model_version == w.candidate, candidate_shadow), literal("c")),
        else_=literal(None),
    )


def _where(w: Window) -> ColumnElement[bool]:
    return and_(
        spans.c.project_id == w.project_id,
        spans.c.request_model == w.route,
        spans.c.model_version.in_((w.baseline, w.candidate)),
        spans.c.start_time_unix_nano > w.after_ns - LOOKBACK_NS,
        spans.c.start_time_unix_nano <= w.upto_ns,
        spans.c.ingested_at_unix_nano > w.after_ns,
        spans.c.ingested_at_unix_nano <= w.upto_ns,
    )


def _moments(n: Any, total: Any, squares: Any) -> Moments:
    count = int(n or 0)
    if count == 0:
        return Moments(0)
    mean = float(total) / count
    return Moments(count, mean, max(0.0, float(squares) - count * mean * mean))


def _moment_columns(column: ColumnElement[Any], label: str) -> list[Any]:
    return [
        func.count(column).label(f"{label}_n"),
        func.sum(column).label(f"{label}_s"),
        func.sum(column * column).label(f"{label}_q"),
    ]


def _span_figures(conn: Connection, w: Window, rules: list[MetricRule]) -> dict[str, dict[str, Sample]]:
    # The arm is computed in a subquery: PostgreSQL would not match a CASE with bound
    # parameters in the select list to the same CASE in GROUP BY.
    rows = (
        select(
            _arm(w).label("arm"),
            spans.c.status_code,
            *(column.label(name) for name, column in _COLUMNS.items()),
        )
        .where(_where(w))
        .subquery()
    )
    columns: list[Any] = [
        rows.c.arm,
        func.count().label("n"),
        func.sum(case((rows.c.status_code == STATUS_ERROR, 1), else_=0)).label("errors"),
    ]
    for rule in rules:
        if rule.name in _COLUMNS:
            columns += _moment_columns(rows.c[rule.name], rule.name)
    out: dict[str, dict[str, Sample]] = {}
    for row in conn.execute(select(*columns).group_by(rows.c.arm)).mappings():
        if row["arm"] is None:
            continue
        sample: dict[str, Sample] = {}
        for rule in rules:
            if rule.name == "error_rate":
                sample[rule.name] = Counts(int(row["n"]), int(row["errors"] or 0))
            elif rule.name in _COLUMNS:
                sample[rule.name] = _moments(
                    row[f"{rule.name}_n"], row[f"{rule.name}_s"], row[f"{rule.name}_q"]
                )
        out[str(row["arm"])] = sample
    return out


def _score_figure(conn: Connection, w: Window, rule: MetricRule) -> dict[str, Sample]:
    join = and_(
        scores.c.project_id == spans.c.project_id,
        scores.c.trace_id == spans.c.trace_id,
        scores.c.span_id == spans.c.span_id,
        scores.c.name == rule.name[len(SCORE_PREFIX) :],
        scores.c.value.is_not(None),
    )
    rows = (
        select(_arm(w).label("arm"), scores.c.value)
        .select_from(spans.join(scores, join))
        .where(_where(w))
        .subquery()
    )
    value = rows.c.value
    query = select(
        rows.c.arm,
        func.count(value).label("n"),
        func.sum(case((value > 0, 1), else_=0)).label("events"),
        func.sum(value).label("s"),
        func.sum(value * value).label("q"),
    ).group_by(rows.c.arm)
    out: dict[str, Sample] = {}
    for row in conn.execute(query).mappings():
        if row["arm"] is None:
            continue
        if rule.kind == "proportion":
            out[str(row["arm"])] = Counts(int(row["n"]), int(row["events"] or 0))
        else:
            out[str(row["arm"])] = _moments(row["n"], row["s"], row["q"])
    return out


def _empty(rule: MetricRule) -> Sample:
    return Counts(0, 0) if rule.kind == "proportion" else Moments(0)


def figures(conn: Connection, w: Window, policy: CanaryPolicy) -> dict[str, tuple[Sample, Sample]]:
    """The batch for ``observe``: ``metric -> (baseline, candidate)`` of this window only."""
    span_rules = [m for m in policy.metrics if not m.name.startswith(SCORE_PREFIX)]
    by_arm: Mapping[str, Mapping[str, Sample]] = _span_figures(conn, w, span_rules)
    batch: dict[str, tuple[Sample, Sample]] = {}
    for rule in policy.metrics:
        if rule.name.startswith(SCORE_PREFIX):
            arms = _score_figure(conn, w, rule)
            pair = (arms.get("b", _empty(rule)), arms.get("c", _empty(rule)))
        else:
            pair = (
                by_arm.get("b", {}).get(rule.name, _empty(rule)),
                by_arm.get("c", {}).get(rule.name, _empty(rule)),
            )
        if pair[0].n or pair[1].n:
            batch[rule.name] = pair
    return batch
