"""Per-user and per-session totals: traces, LLM calls, tokens, cost, errors, first/last seen.

A span counts for the user (or session) it carries, else its trace's (the item-1 rule:
attributes set once per trace reach every span, whatever the export order), so a span
exported apart from the one that named the user is still counted. Totals are summed
from ``spans`` on read, like the trace list's counters, so replays never double count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, case, func, select
from sqlalchemy.sql import ColumnElement, Select, Subquery

from watchkeep.store.tables import spans
from watchkeep.store.trace_attributes import span_attribute, span_attribute_is

Dimension = Literal["user_id", "session_id"]
SortKey = Literal["traces", "calls", "total_tokens", "cost_usd", "errors", "first_seen", "last_seen"]


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Spans counted: started in [start_from, start_to), of an environment and release."""

    start_from_ns: int | None = None
    start_to_ns: int | None = None
    environment: str | None = None
    release: str | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """What one user or session did in the range: its spans' totals (``calls``: LLM spans,
    ``errors``: spans with error status)."""

    id: str
    traces: int
    spans: int
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    errors: int
    first_seen_unix_nano: int
    last_seen_unix_nano: int


def _per_trace(rows: Subquery) -> Select[Any]:
    """The range's spans summed per (key, trace): the first of two aggregation steps, so the
    second counts traces by counting rows instead of a COUNT(DISTINCT), which needs a sort."""
    r = rows.c
    return select(
        r.key,
        func.count().label("spans"),
        func.sum(case((r.operation.is_not(None), 1), else_=0)).label("calls"),
        func.sum(r.input_tokens).label("input_tokens"),
        func.sum(r.output_tokens).label("output_tokens"),
        func.sum(r.total_tokens).label("total_tokens"),
        func.sum(r.cost_usd).label("cost_usd"),
        func.sum(case((r.status_code == 2, 1), else_=0)).label("errors"),
        func.min(r.start_time_unix_nano).label("first_seen"),
        func.max(r.end_time_unix_nano).label("last_seen"),
    ).group_by(r.key, r.trace_id)


def _columns(per_trace: Subquery) -> dict[str, ColumnElement[Any]]:
    t = per_trace.c
    return {
        "id": t.key,
        "traces": func.count(),
        "spans": func.sum(t.spans),
        "calls": func.sum(t.calls),
        "input_tokens": func.coalesce(func.sum(t.input_tokens), 0),
        "output_tokens": func.coalesce(func.sum(t.output_tokens), 0),
        "total_tokens": func.coalesce(func.sum(t.total_tokens), 0),
        "cost_usd": func.coalesce(func.sum(t.cost_usd), 0.0),
        "errors": func.sum(t.errors),
        "first_seen": func.min(t.first_seen),
        "last_seen": func.max(t.last_seen),
    }


class UsageQueries:
    """Totals grouped by user or session, always within one project."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _query(
        self, project_id: int, dim: Dimension, f: UsageFilter, only: str | None = None
    ) -> tuple[Select[Any], dict[str, Any]]:
        # The spans of the range with their user (or session) worked out per span, then
        # grouped: the key is the span's own value, else its trace's by primary key
        # (``span_attribute``), never a join of all the project's traces.
        s = spans.c
        cond: list[ColumnElement[bool]] = [s.project_id == project_id]
        if f.start_from_ns is not None:
            cond.append(s.start_time_unix_nano >= f.start_from_ns)
        if f.start_to_ns is not None:
            cond.append(s.start_time_unix_nano < f.start_to_ns)
        for name, value in (("environment", f.environment), ("release", f.release), (dim, only)):
            if value is not None:
                cond.append(span_attribute_is(name, value))
        fields = (s.trace_id, s.operation, s.input_tokens, s.output_tokens, s.total_tokens, s.cost_usd)
        rows = (
            select(span_attribute(dim).label("key"), *fields, s.status_code)
            .add_columns(s.start_time_unix_nano, s.end_time_unix_nano)
            .where(*cond)
            .subquery("ranged")
        )
        per_trace = _per_trace(rows).where(rows.c.key.is_not(None)).subquery("per_trace")
        cols = _columns(per_trace)
        query = select(*(c.label(n) for n, c in cols.items()))
        return query.group_by(per_trace.c.key), cols

    def list(
        self,
        project_id: int,
        dim: Dimension,
        f: UsageFilter,
        *,
        sort: SortKey = "last_seen",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[UsageTotals], bool]:
        """One page of totals, sorted (ties by id); and whether more follow."""
        query, cols = self._query(project_id, dim, f)
        order = cols[sort].desc() if descending else cols[sort].asc()
        query = query.order_by(order, cols["id"].asc()).limit(limit + 1).offset(offset)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_totals(r) for r in rows[:limit]], len(rows) > limit

    def get(self, project_id: int, dim: Dimension, value: str, f: UsageFilter) -> UsageTotals | None:
        """The totals of one user or session; None when it has no span in range."""
        query, _ = self._query(project_id, dim, f, only=value)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _totals(row)


def _totals(r: Any) -> UsageTotals:
    return UsageTotals(
        id=str(r.id),
        traces=int(r.traces),
        spans=int(r.spans),
        calls=int(r.calls or 0),
        input_tokens=int(r.input_tokens),
        output_tokens=int(r.output_tokens),
        total_tokens=int(r.total_tokens),
        cost_usd=float(r.cost_usd),
        errors=int(r.errors or 0),
        first_seen_unix_nano=int(r.first_seen),
        last_seen_unix_nano=int(r.last_seen),
    )
