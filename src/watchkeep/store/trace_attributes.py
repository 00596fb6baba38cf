"""Trace-level attributes as a span sees them: its own value, else its trace's.

User, session, environment, release and tags may arrive in another export request than
a given span (issue 12 item 1), so the span's own column can be empty while the trace
row, merged over every export of the trace (ADR 0002), has the value. Every query that
filters spans by these attributes — the span list, the metrics API, monitors, drift
features — applies this one rule, in one of two equivalent forms:

- ``SPAN_ATTRIBUTES``: the value itself (``COALESCE(span, trace)``), for queries that
  join ``traces`` on ``TRACE_OF_SPAN`` and show it (the span list);
- ``span_attribute_is`` / ``span_has_tags``: a predicate that needs no join; the trace
  row is probed by its primary key only for spans that lack their own value, so the
  aggregate scans of monitors pay nothing for spans that carry it;
- ``span_attribute``: the value without a join, the same probe as a scalar subquery (for
  totals grouped by user or session over a time range: joining every trace of the project
  to group a day of spans costs a hash of all of them on PostgreSQL).

A span reaches its trace row by ``trace_row_id`` (the row's primary key), and the spans of
given traces are reached the other way (``spans_of_traces``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.sql import ColumnElement

from watchkeep.store.json_filters import ArrayHas
from watchkeep.store.rows import TRACE_ATTRIBUTE_COLUMNS
from watchkeep.store.tables import spans, traces

TRACE_OF_SPAN = and_(traces.c.id == spans.c.trace_row_id, traces.c.project_id == spans.c.project_id)
"""The join condition of a span's trace row (by the trace's row id, ADR 0032)."""

SPAN_ATTRIBUTES: dict[str, ColumnElement[Any]] = {
    c: func.coalesce(spans.c[c], traces.c[c]) for c in TRACE_ATTRIBUTE_COLUMNS
}
"""A span's own value of each trace attribute, else its trace's (needs ``traces`` joined)."""

# An alias, so the probe stays correlated to the span also in queries that join traces.
_OWN_TRACE = traces.alias("own_trace")
_PROBE = and_(_OWN_TRACE.c.id == spans.c.trace_row_id, _OWN_TRACE.c.project_id == spans.c.project_id)


def spans_of_traces(project_id: int, trace_ids: Sequence[str]) -> ColumnElement[bool]:
    """The spans of the project's traces ``trace_ids``: the trace rows found by their key,
    then the spans by ``trace_row_id`` (the spans keep ``trace_id`` unindexed, ADR 0032)."""
    t = traces.c
    rows = select(t.id).where(t.project_id == project_id)
    if len(trace_ids) == 1:
        of_traces = spans.c.trace_row_id == rows.where(t.trace_id == trace_ids[0]).scalar_subquery()
    else:
        of_traces = spans.c.trace_row_id.in_(rows.where(t.trace_id.in_(trace_ids)))
    # The spans' own project too (a check on rows found; ``+ 0``: not an index to search by,
    # or a planner may walk the project's spans instead of the few of these traces).
    return and_(of_traces, spans.c.project_id + 0 == project_id)


def span_attribute(name: str) -> ColumnElement[Any]:
    """``SPAN_ATTRIBUTES[name]`` without a join: the span's own value, else its trace row's,
    looked up by primary key (COALESCE stops at the first value, so only spans without
    their own pay for the look-up)."""
    if name not in TRACE_ATTRIBUTE_COLUMNS or name == "tags":
        raise ValueError(f"not a scalar trace attribute: {name!r}")
    inherited = select(_OWN_TRACE.c[name]).where(_PROBE).scalar_subquery()
    return func.coalesce(spans.c[name], inherited)


def span_attribute_is(name: str, value: str) -> ColumnElement[bool]:
    """``SPAN_ATTRIBUTES[name] == value`` without a join (user, session, environment, release)."""
    if name not in TRACE_ATTRIBUTE_COLUMNS or name == "tags":
        raise ValueError(f"not a scalar trace attribute: {name!r}")
    own = spans.c[name]
    inherited = exists().where(_PROBE, _OWN_TRACE.c[name] == value)
    return or_(own == value, and_(own.is_(None), inherited))


def span_has_tags(tags: Sequence[str]) -> ColumnElement[bool]:
    """The span's tags, else its trace's, include every one of ``tags`` (no join needed)."""
    own = spans.c.tags
    return and_(
        *(
            or_(
                and_(own.is_not(None), ArrayHas(own, tag)),
                and_(own.is_(None), exists().where(_PROBE, ArrayHas(_OWN_TRACE.c.tags, tag))),
            )
            for tag in tags
        )
    )
