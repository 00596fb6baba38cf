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
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store.tables import spans, traces
from watchkeep.store.trace_attributes import SPAN_ATTRIBUTES, TRACE_OF_SPAN

Dimension = Literal["user_id", "session_id"]
SortKey = Literal["traces", "calls", "total_tokens", "cost_usd", "errors", "first_seen", "last_seen"]
SPANS_WITH_TRACE = spans.outerjoin(traces, TRACE_OF_SPAN)


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


def _columns(key: ColumnElement[Any]) -> dict[str, ColumnElement[Any]]:
    s = spans.c
    return {
        "id": key,
        "traces": func.count(func.distinct(s.trace_id)),
        "spans": func.count(),
        "calls": func.sum(case((s.operation.is_not(None), 1), else_=0)),
        "input_tokens": func.coalesce(func.sum(s.input_tokens), 0),
        "output_tokens": func.coalesce(func.sum(s.output_tokens), 0),
        "total_tokens": func.coalesce(func.sum(s.total_tokens), 0),
        "cost_usd": func.coalesce(func.sum(s.cost_usd), 0.0),
        "errors": func.sum(case((s.status_code == 2, 1), else_=0)),
        "first_seen": func.min(s.start_time_unix_nano),
        "last_seen": func.max(s.end_time_unix_nano),
    }


class UsageQueries:
    """Totals grouped by user or session, always within one project."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _query(self, project_id: int, dim: Dimension, f: UsageFilter) -> tuple[Select[Any], dict[str, Any]]:
        key = SPAN_ATTRIBUTES[dim]
        cols = _columns(key)
        cond: list[ColumnElement[bool]] = [spans.c.project_id == project_id, key.is_not(None)]
        if f.start_from_ns is not None:
            cond.append(spans.c.start_time_unix_nano >= f.start_from_ns)
        if f.start_to_ns is not None:
            cond.append(spans.c.start_time_unix_nano < f.start_to_ns)
        for name, value in (("environment", f.environment), ("release", f.release)):
            if value is not None:
                cond.append(SPAN_ATTRIBUTES[name] == value)
        query = select(*(c.label(n) for n, c in cols.items())).select_from(SPANS_WITH_TRACE).where(*cond)
        return query.group_by(key), cols

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
        query, _ = self._query(project_id, dim, f)
        with self._engine.connect() as conn:
            row = conn.execute(query.where(SPAN_ATTRIBUTES[dim] == value)).first()
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
