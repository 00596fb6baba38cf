"""The span list's query: one keyset page of spans, newest first, scoped to a project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store.index_tables import trace_lookups
from watchkeep.store.json_filters import ArrayHas
from watchkeep.store.tables import resources, spans, traces
from watchkeep.store.trace_attributes import (
    SPAN_ATTRIBUTES,
    TRACE_OF_SPAN,
    span_attribute_is,
    span_has_tags,
    spans_of_traces,
)
from watchkeep.store.trace_filter import (
    METADATA_WALK_STEPS,
    TraceFilter,
    decode_cursor,
    like_pattern,
    metadata_span_rows,
    picking,
    span_content_conditions,
    trace_picks,
)
from watchkeep.store.trace_lookups import (
    beside_lookup,
    lookup_of,
    lookup_range,
    picked_traces,
    read_lookup_mark,
)

SPAN_FIELDS = [
    c
    for c in spans.c
    if c.name not in ("id", "project_id", "ingested_at_unix_nano", "resource_id", "trace_row_id")
]
RESOURCE_OF_SPAN = and_(
    resources.c.project_id == spans.c.project_id, resources.c.resource_id == spans.c.resource_id
)
SPANS_WITH_RESOURCE = spans.outerjoin(resources, RESOURCE_OF_SPAN)
RESOURCE_ATTRIBUTES = resources.c.attributes.label("resource_attributes")
# The span list reads trace-level attributes through the trace row (merged over every
# export of the trace, ADR 0002), so a span exported apart from the one that set them
# still carries and matches them; one primary-key probe per span, no write-time rewrite.
SPANS_WITH_TRACE = SPANS_WITH_RESOURCE.outerjoin(traces, TRACE_OF_SPAN)
SPAN_LIST_FIELDS = [
    SPAN_ATTRIBUTES[c.name].label(c.name) if c.name in SPAN_ATTRIBUTES else c for c in SPAN_FIELDS
]


# ``span_page`` bounds a user's or session's spans by the start of their (want x step)-th
# newest trace, in turn: at 10M spans on PostgreSQL reading all 20k spans of a user with
# 5,000 traces took 39-41 ms p50 (50-55 p95).
TRACE_WALK_STEPS = (1, 8, 64)
# Traces picked by a user, session or tags from which the span list leaves the plan to the
# planner (``_many_traces_picked``). At 10M spans on PostgreSQL a user with 5,000 traces (20k
# spans) took 40 ms p50 through its traces and 73 ms by the walk; the walk gets cheaper as
# the user's share grows, reading theirs dearer. The threshold is set between, not measured.
DENSE_TRACES = 10_000


def span_page(conn: Any, project_id: int, f: TraceFilter, want: int, cursor: str | None) -> list[Any]:
    """The first ``want`` rows of ``span_list_query`` (``cursor`` on), read on ``conn``.

    Given metadata, the spans carrying its first pair are read newest first from
    ``span_metadata``'s range, but PostgreSQL joins and sorts every candidate before the
    limit (180 ms at 10M spans for a pair on 1 trace in 500). So the range's ``step``-th row
    bounds the query from below: once the bounded query fills the page, every span further
    down the range starts earlier than all of the page's and cannot rank before them.

    Given a user or session, the spans of the traces they pick are bounded the same way
    by the start of the (``want`` x step)-th newest of those traces: only traces that end at
    or after it are read (no span starts after its trace's end, revision 0026).
    """
    if f.metadata and f.trace_id is None:
        m, cond = metadata_span_rows(project_id, f)
        at = m.c.start_time_unix_nano
        if cursor is not None:
            cond.append(at <= decode_cursor(cursor, (int, int))[0])
        for step in METADATA_WALK_STEPS:
            floor = conn.execute(
                select(at).where(*cond).order_by(at.desc()).offset(step - 1).limit(1)
            ).scalar()
            if floor is None:
                break  # fewer candidates than the step: the query reads them all anyway
            rows = conn.execute(span_list_query(project_id, f, want, cursor, floor=floor)).all()
            if len(rows) >= want:
                return list(rows)
    mark = read_lookup_mark(conn)  # a value, not a subquery: PostgreSQL plans by it
    walk = _many_traces_picked(conn, project_id, f, mark)
    bounded = picking(f) and not (walk or f.metadata or f.trace_id is not None)
    newest = _newest_picked(project_id, f, cursor) if bounded else None
    for step in (want * k for k in TRACE_WALK_STEPS):
        floor = None if newest is None else conn.execute(newest.offset(step - 1).limit(1)).scalar()
        if floor is None:
            break  # no user or session; or fewer traces than the step: one query reads all
        rows = conn.execute(span_list_query(project_id, f, want, cursor, floor=floor, mark=mark)).all()
        if len(rows) >= want:
            return list(rows)
    return list(conn.execute(span_list_query(project_id, f, want, cursor, walk=walk, mark=mark)).all())


def _newest_picked(project_id: int, f: TraceFilter, cursor: str | None) -> Select[Any] | None:
    """The start times of the traces ``f``'s user or session picks, newest first, from their
    lookup rows (None when it names neither). The ``step``-th bounds ``span_page``'s reads:
    each of the ``step`` newest traces has a span that starts with it, so at least ``step``
    spans start at or after it (a page of them, unless other filters reject spans). Any
    bound is correct, only its cost varies: the bounded query reads every span starting at
    or after it, and ``span_page`` takes its rows only when they fill the page (so lookup
    rows not yet written or stale, ``trace_lookups``, cost reads, never rows).

    ``span_page`` asks only given a user or session, whose index range this is: tags alone
    are tested on each tagged trace's row, so for a tag few traces have this would read them
    all before the page's own query read them again (a tag no trace has: 3.4 → 6.1 ms p95 at
    2M on SQLite, 5.3 → 9.2 at 10M on PostgreSQL)."""
    found = lookup_of(f)
    if found is None:
        return None
    c = trace_lookups.c
    cond = lookup_range(project_id, *found)
    if f.start_to_ns is not None:
        cond.append(c.start_time_unix_nano < f.start_to_ns)
    if cursor is not None:  # a trace starts no later than its spans: none of a later one's is on
        cond.append(c.start_time_unix_nano <= decode_cursor(cursor, (int, int))[0])
    return (
        select(c.start_time_unix_nano).where(*cond).order_by(c.start_time_unix_nano.desc(), c.trace_id.desc())
    )


def _many_traces_picked(conn: Any, project_id: int, f: TraceFilter, mark: int | None = None) -> bool:
    """Whether ``f``'s user, session or tags pick ``DENSE_TRACES`` traces or more: then their
    spans may be common enough that walking the project's spans newest first finds a page
    soon, while reading all of theirs and sorting them grows with them (a user every trace
    has, for one), so the planner chooses (``span_list_query``'s ``walk``)."""
    picked = _traces_picked(project_id, f, mark)
    if picked is None or f.metadata or f.trace_id is not None:
        return False
    bounded: Select[Any] = picked.with_only_columns(literal_column("1"), maintain_column_froms=True).limit(
        DENSE_TRACES
    )
    counted = select(func.count()).select_from(bounded.subquery())
    return int(conn.execute(counted).scalar_one()) >= DENSE_TRACES


def span_list_query(
    project_id: int,
    f: TraceFilter,
    limit: int,
    cursor: str | None,
    *,
    floor: int | None = None,
    walk: bool = False,
    mark: int | None = None,
) -> Select[Any]:
    """One keyset page (``limit`` rows, newest first, with the row id) of the span list.

    Trace-level filters (user, session, environment, release, tags) match a span's own
    value, else its trace's, whichever export carried it. User, session and tags are looked
    up through the traces they pick (``_traces_picked``) unless ``walk``: then one query
    tests each span's joined trace row, and the planner may walk the project's spans newest
    first (what pays for a value most traces share) or start from the traces' index; the
    rows are the same either way.
    """
    s = spans.c
    start: ColumnElement[int] = s.start_time_unix_nano
    row_id: ColumnElement[int] = s.id
    cond: list[ColumnElement[bool]] = []
    source: Any = SPANS_WITH_TRACE
    by_metadata = bool(f.metadata) and f.trace_id is None
    picked = (
        None if by_metadata or walk or f.trace_id is not None else _traces_picked(project_id, f, mark, floor)
    )
    if by_metadata:
        # The spans carrying the first metadata pair, newest first, read from span_metadata's
        # (project, key, value, start) range: its rows hold their span's start, so the range is
        # in the list's order; each row's span is found through its trace row and the spans'
        # key. Walking the project's spans and probing each (as before) read all of them when
        # few matched: 1.6 s at 10M on PostgreSQL for a pair on 1 trace in 500.
        m, on_metadata = metadata_span_rows(project_id, f)
        start = m.c.start_time_unix_nano
        cond.extend(on_metadata)
        if floor is not None:  # ``span_page``'s bound: the start of a span further down the range
            cond.append(start >= floor)
        owner = traces.alias("metadata_trace")
        row_of_trace = select(owner.c.id).where(
            owner.c.project_id == m.c.project_id, owner.c.trace_id == m.c.trace_id
        )
        source = (  # the key as an equality on both its columns: no planner reads spans another way
            m.join(spans, and_(s.trace_row_id == row_of_trace.scalar_subquery(), s.span_id == m.c.span_id))
            .outerjoin(resources, RESOURCE_OF_SPAN)
            .outerjoin(traces, TRACE_OF_SPAN)
        )
    elif picked is not None:
        # The spans of the traces the user, session or tags pick, found by their trace's row id
        # and sorted; the bare start time would lead SQLite to walk the project's spans instead.
        start, row_id = s.start_time_unix_nano + 0, s.id + 0
        if floor is not None:  # ``span_page``'s bound (its traces' end: ``_traces_picked``)
            cond.append(start >= floor)
        cond.extend((s.trace_row_id.in_(picked), s.project_id + 0 == project_id))
    elif f.trace_id is not None:
        # One trace's few spans, found by their trace's row id and sorted. Given the bare start
        # time to order by or to range over (a cursor), SQLite's planner walks the project's
        # whole (project, start) index for them instead (749 ms at 2M spans): an expression
        # cannot be read from an index.
        start, row_id = s.start_time_unix_nano + 0, s.id + 0
        cond.append(spans_of_traces(project_id, [f.trace_id]))  # checks the project too
    else:
        cond.append(s.project_id == project_id)
    if f.start_from_ns is not None:
        cond.append(start >= f.start_from_ns)
    if f.start_to_ns is not None:
        cond.append(start < f.start_to_ns)
    cond.extend(_span_column_conditions(f))
    cond.extend(_span_attribute_conditions(f, joined=picked is None))
    if picked is None:  # as ``_traces_picked`` asks of the traces: the joined row matches too
        cond.extend(trace_picks(traces.c, f))
    cond.extend(span_content_conditions(project_id, f, metadata=not by_metadata))
    if cursor is not None:
        after_start, after_id = decode_cursor(cursor, (int, int))
        cond.append(or_(start < after_start, and_(start == after_start, row_id < after_id)))
        if by_metadata:
            cond.append(start <= after_start)  # bounds the index range; the OR alone would not
    if picked is not None:
        # The page's ids first, from the spans alone; only its rows are joined for display.
        # Joining each candidate before sorting (as one query) cost 76 ms at 10M spans on
        # PostgreSQL for a user with 1 trace in 500 (20k candidate spans).
        page = select(s.id).where(*cond).order_by(start.desc(), row_id.desc()).limit(limit)
        cond = [s.id.in_(page.correlate(None)), s.project_id + 0 == project_id]
    return (
        select(s.id, *SPAN_LIST_FIELDS, RESOURCE_ATTRIBUTES)
        .select_from(source)
        .where(*cond)
        .order_by(start.desc(), row_id.desc())
        .limit(limit)
    )


def _span_column_conditions(f: TraceFilter) -> list[ColumnElement[bool]]:
    """``f``'s model, provider, operation, status and name, on the span's own columns."""
    s = spans.c
    cond: list[ColumnElement[bool]] = []
    if f.model is not None:
        cond.append(or_(s.request_model == f.model, s.response_model == f.model))
    for column, value in ((s.provider, f.provider), (s.operation, f.operation)):
        if value is not None:
            cond.append(column == value)
    if f.status == "error":
        cond.append(s.status_code == 2)
    elif f.status == "ok":
        cond.append(s.status_code != 2)
    if f.name:
        cond.append(s.name.ilike(like_pattern(f.name), escape="\\"))
    return cond


def _span_attribute_conditions(f: TraceFilter, *, joined: bool) -> list[ColumnElement[bool]]:
    """``f``'s trace-level filters on a span's own value, else its trace's: on ``traces``
    joined to the span (``joined``), or probing its trace row by primary key."""
    named = {
        "user_id": f.user_id,
        "session_id": f.session_id,
        "environment": f.environment,
        "release": f.release,
    }
    pairs = [(name, value) for name, value in named.items() if value is not None]
    if joined:
        cond = [SPAN_ATTRIBUTES[name] == value for name, value in pairs]
        return cond + [ArrayHas(SPAN_ATTRIBUTES["tags"], tag) for tag in f.tags]
    cond = [span_attribute_is(name, value) for name, value in pairs]
    return cond + ([span_has_tags(f.tags)] if f.tags else [])


def _traces_picked(
    project_id: int, f: TraceFilter, mark: int | None = None, floor: int | None = None
) -> Select[Any] | None:
    """Row ids of the project's traces matching ``f``'s user, session and tags (None when it
    names none) that end at or after ``floor`` (``span_page``'s bound: no span of a trace
    starts after its end, revision 0026), read from their lookup rows (``trace_lookups``)
    or the traces' tag index: walking the spans newest first and testing each read all 10M
    of them at 10M spans on PostgreSQL for a tag no span has (13 s).

    A user or session alone is answered by the lookup rows, which carry each trace's start
    and end: probing each of a user's 5,000 trace rows for its end cost 49 / 66 ms p50 / p95
    at 10M on PostgreSQL. Other picks are tested on the trace rows.

    A trace row keeps the first value exported for its trace, so a span exported later with
    a user of its own unlike its trace's is listed under neither: not under its trace's user
    (it has its own), not under its own (its trace is not that user's, in the trace list too).
    """
    if not picking(f) and not f.tags:
        return None
    t = traces.c
    looked_up = picked_traces(project_id, f, mark, floor)  # a user or session: their lookup rows
    beside = trace_picks(t, beside_lookup(f))
    if looked_up is not None and not beside:
        return looked_up  # the lookup rows settle the project, the pick and the times
    if looked_up is None:
        cond = [t.project_id == project_id, *beside]
    else:  # by their row ids: no index of the project's traces is to be walked
        cond = [t.project_id + 0 == project_id, *beside, t.id.in_(looked_up)]
    if f.start_to_ns is not None:  # a trace starts no later than its spans
        cond.append(t.start_time_unix_nano < f.start_to_ns)
    if floor is not None:
        cond.append(t.end_time_unix_nano >= floor)
    return select(t.id).where(*cond)
