"""Read side of traces and spans: filtered, keyset-paginated, always scoped to a project.

Trace pages come from the ``traces`` table (one row per trace, indexed by project and
start time); counters for the page's traces (spans, tokens, cost, models) are summed
from ``spans`` on read, which costs one indexed query for the whole page and can never
double count a replayed span.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Engine, and_, exists, false, func, or_, select
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store.json_filters import ArrayHas
from watchkeep.store.rows import METADATA_KEY_CHARS, METADATA_VALUE_CHARS, TRACE_ATTRIBUTE_COLUMNS
from watchkeep.store.sealing import Sealer, open_text, row_aad
from watchkeep.store.tables import resources, scores, span_metadata, span_payloads, spans, traces
from watchkeep.store.text_search import SpanTextMatch, query_words
from watchkeep.store.trace_attributes import (
    SPAN_ATTRIBUTES,
    TRACE_OF_SPAN,
    span_attribute_is,
    span_has_tags,
    spans_of_traces,
)

T = TypeVar("T")


class InvalidCursor(ValueError):
    """A pagination cursor that this server did not produce."""


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for keyset pagination."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The parts of ``cursor``, checked against ``types``."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if (
        not isinstance(parts, list)
        or len(parts) != len(types)
        or not all(_cursor_part_ok(p, t) for p, t in zip(parts, types, strict=True))
    ):
        raise InvalidCursor("malformed cursor")
    return parts


def _cursor_part_ok(part: Any, expected: type) -> bool:
    """The part has the expected type and a value the databases can compare with."""
    if isinstance(part, bool) or not isinstance(part, expected):
        return False
    if isinstance(part, int):
        return -(1 << 63) <= part < (1 << 63)
    return not isinstance(part, str) or "\x00" not in part


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """What a trace or span list may be narrowed by (all optional, combined with AND)."""

    start_from_ns: int | None = None
    start_to_ns: int | None = None
    model: str | None = None
    provider: str | None = None
    operation: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    status: str | None = None  # "ok" or "error"
    name: str | None = None  # substring, case-insensitive
    trace_id: str | None = None
    q: str | None = None  # words of the prompt or response text (full-text, all must match)
    tags: tuple[str, ...] = ()  # every one must be among the tags
    metadata: tuple[tuple[str, str], ...] = ()  # (key, value) pairs of SDK metadata, all must match


@dataclass(slots=True)
class TraceSummary:
    """One row of the trace list."""

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
    tags: list[str]
    span_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    models: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items and the cursor of the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


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


EXPORT_BATCH = 2000  # spans a query of the export stream
# Rows of ``span_metadata`` each step of the metadata walk reads, newest first
# (``TraceQueries._metadata_walk``); past the last step the list runs as one query.
METADATA_WALK_STEPS = (256, 1024, 4096)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class TraceQueries:
    """Lists traces and spans and loads whole traces for one project."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer  # opens encrypted payloads (None: they are plaintext)

    def trace_conditions(
        self, project_id: int, f: TraceFilter, *, walked: Sequence[str] | None = None
    ) -> list[ColumnElement[bool]]:
        """``f`` as conditions on ``traces``; ``walked``: ids the metadata walk found, which
        stand for the metadata subquery."""
        t = traces.c
        cond: list[ColumnElement[bool]] = [t.project_id == project_id]
        if f.start_from_ns is not None:
            cond.append(t.start_time_unix_nano >= f.start_from_ns)
        if f.start_to_ns is not None:
            cond.append(t.start_time_unix_nano < f.start_to_ns)
        cond.extend(_trace_picks(t, f))
        for column, value in (
            (t.environment, f.environment),
            (t.release, f.release),
            (t.trace_id, f.trace_id),
        ):
            if value is not None:
                cond.append(column == value)
        if f.status == "error":
            cond.append(t.has_error.is_(True))
        elif f.status == "ok":
            cond.append(t.has_error.is_(False))
        if f.name:
            cond.append(t.name.ilike(_like(f.name), escape="\\"))
        if f.metadata:  # one index range of span_metadata picks the candidate traces
            cond.append(t.trace_id.in_(_metadata_traces(project_id, f) if walked is None else walked))
        span_cond = _span_content_conditions(project_id, f)
        if f.model is not None:
            span_cond.append(or_(spans.c.request_model == f.model, spans.c.response_model == f.model))
        if f.provider is not None:
            span_cond.append(spans.c.provider == f.provider)
        if f.operation is not None:
            span_cond.append(spans.c.operation == f.operation)
        if span_cond and len(span_cond) > len(f.metadata):  # the trace subquery settled metadata alone
            cond.append(
                exists().where(spans.c.trace_row_id == t.id, *span_cond)  # the row's spans: its project's
            )
        return cond

    def list_traces(
        self, project_id: int, f: TraceFilter, limit: int = 50, cursor: str | None = None
    ) -> Page[TraceSummary]:
        """Newest traces first, matching ``f``."""
        t = traces.c
        after: list[ColumnElement[bool]] = []
        if cursor is not None:
            start, trace_id = decode_cursor(cursor, (int, str))
            after.append(_before(t, start, trace_id))
        with self._engine.connect() as conn:
            rows = self._metadata_walk(conn, project_id, f, after, limit + 1) if _walk_metadata(f) else None
            if rows is None:
                query = select(traces).where(*self.trace_conditions(project_id, f), *after)
                query = query.order_by(t.start_time_unix_nano.desc(), t.trace_id.desc()).limit(limit + 1)
                rows = list(conn.execute(query).all())
            more = len(rows) > limit
            rows = rows[:limit]
            items = [
                TraceSummary(
                    trace_id=r.trace_id,
                    name=r.name,
                    root_span_id=r.root_span_id,
                    start_time_unix_nano=r.start_time_unix_nano,
                    end_time_unix_nano=r.end_time_unix_nano,
                    duration_ms=(r.end_time_unix_nano - r.start_time_unix_nano) / 1e6,
                    has_error=bool(r.has_error),
                    user_id=r.user_id,
                    session_id=r.session_id,
                    environment=r.environment,
                    release=r.release,
                    tags=list(r.tags or []),
                )
                for r in rows
            ]
            self._add_counters(conn, project_id, items)
        next_cursor = None
        if more and items:
            last = items[-1]
            next_cursor = encode_cursor(last.start_time_unix_nano, last.trace_id)
        return Page(items, next_cursor)

    def _metadata_walk(
        self, conn: Any, project_id: int, f: TraceFilter, after: list[ColumnElement[bool]], want: int
    ) -> list[Any] | None:
        """The first ``want`` traces of the list filtered by metadata, found by reading
        ``span_metadata``'s index range newest span first (ADR 0026); None when the steps
        ran out before the page was settled (other conditions rejected most candidates).

        Left to the planners, PostgreSQL reads every matching trace and sorts them, and
        SQLite walks every trace in list order probing the subquery: both grow with the
        store. A trace starts no later than any of its spans, so once ``want`` candidates
        start after the span where the walk stands, no trace further on can rank before them.
        """
        m, cond = _metadata_span_rows(project_id, f)
        at = m.c.start_time_unix_nano
        found: dict[str, Any] = {}
        seen: set[str] = set()
        ranked: list[Any] = []
        for step in METADATA_WALK_STEPS:
            query = select(at, m.c.trace_id).where(*cond).order_by(at.desc(), m.c.trace_id.desc())
            batch = conn.execute(query.limit(step)).all()
            new = sorted({r.trace_id for r in batch} - seen)
            seen.update(new)
            if new:
                walked = self.trace_conditions(project_id, f, walked=new)
                found.update((r.trace_id, r) for r in conn.execute(select(traces).where(*walked, *after)))
            ranked = sorted(found.values(), key=lambda r: (r.start_time_unix_nano, r.trace_id), reverse=True)
            ranked = ranked[:want]
            if len(batch) < step:  # the range is read to its end
                return ranked
            last = batch[-1]
            if len(ranked) == want and ranked[-1].start_time_unix_nano > last.start_time_unix_nano:
                return ranked
            # rows of the last (start, trace) left unread belong to a trace already seen
            cond = [*cond, _before(m.c, last.start_time_unix_nano, last.trace_id)]
        return None

    def _add_counters(self, conn: Any, project_id: int, items: list[TraceSummary]) -> None:
        if not items:
            return
        s = spans.c
        model = func.coalesce(s.response_model, s.request_model)
        query = (
            select(
                s.trace_id,
                model.label("model"),
                func.count().label("n"),
                func.coalesce(func.sum(s.input_tokens), 0).label("input_tokens"),
                func.coalesce(func.sum(s.output_tokens), 0).label("output_tokens"),
                func.coalesce(func.sum(s.total_tokens), 0).label("total_tokens"),
                func.coalesce(func.sum(s.cost_usd), 0.0).label("cost"),
            )
            .where(spans_of_traces(project_id, [i.trace_id for i in items]))
            .group_by(s.trace_id, model)
        )
        by_id = {i.trace_id: i for i in items}
        for r in conn.execute(query):
            item = by_id[r.trace_id]
            item.span_count += int(r.n)
            item.input_tokens += int(r.input_tokens)
            item.output_tokens += int(r.output_tokens)
            item.total_tokens += int(r.total_tokens)
            item.cost_usd += float(r.cost)
            if r.model is not None:
                item.models.append(r.model)
        for item in items:
            item.models.sort()

    def list_spans(
        self, project_id: int, f: TraceFilter, limit: int = 100, cursor: str | None = None
    ) -> Page[dict[str, Any]]:
        """Newest spans first, matching ``f`` (see ``span_list_query``)."""
        query = span_list_query(project_id, f, limit + 1, cursor)
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            next_cursor = encode_cursor(rows[-1]["start_time_unix_nano"], rows[-1]["id"])
        for r in rows:
            del r["id"]
        return Page(rows, next_cursor)

    def export_spans(
        self, project_id: int, f: TraceFilter, batch_size: int = EXPORT_BATCH
    ) -> Iterator[tuple[list[str], Sequence[Any]]]:
        """Every span ``list_spans`` would page through, as (column names, row tuples)
        batches of ``batch_size``: a keyset loop, one short query (and connection) per
        batch, so memory is flat and no transaction stays open while a slow client reads."""
        cursor: str | None = None
        while True:
            with self._engine.connect() as conn:
                result = conn.execute(span_list_query(project_id, f, batch_size, cursor))
                names, rows = [*map(str, result.keys())][1:], result.all()
            if not rows:
                return
            yield names, [r[1:] for r in rows]
            if len(rows) < batch_size:
                return
            cursor = encode_cursor(rows[-1].start_time_unix_nano, rows[-1].id)

    def get_trace(self, project_id: int, trace_id: str) -> dict[str, Any] | None:
        """Every span of a trace with its payload, and the trace's scores; None if unknown.

        Trace-level attributes (user, session, environment, release, tags) missing on a
        span, because it was exported apart from the span that set them, are inherited
        from the trace row.
        """
        s = spans.c
        with self._engine.connect() as conn:
            # Sorted here, not by the query: an ORDER BY on the start time leads SQLite's
            # planner to walk the project's (project, start) index past every span it
            # holds instead of taking the trace's few rows by their trace's row id.
            span_rows = sorted(
                (
                    dict(r._mapping)
                    for r in conn.execute(
                        select(*SPAN_FIELDS, RESOURCE_ATTRIBUTES)
                        .select_from(SPANS_WITH_RESOURCE)
                        .where(spans_of_traces(project_id, [trace_id]))
                    )
                ),
                key=lambda row: (row["start_time_unix_nano"], row["span_id"]),
            )
            if not span_rows:
                return None
            trace_row = conn.execute(
                select(*(traces.c[c] for c in TRACE_ATTRIBUTE_COLUMNS)).where(
                    traces.c.project_id == project_id, traces.c.trace_id == trace_id
                )
            ).first()
            p = span_payloads.c
            payloads = {
                r.span_id: r
                for r in conn.execute(
                    select(s.span_id, p.input, p.output)
                    .select_from(spans.join(span_payloads, p.span_row_id == s.id))
                    .where(spans_of_traces(project_id, [trace_id]))
                )
            }
            score_rows = [
                dict(r._mapping)
                for r in conn.execute(
                    select(scores)
                    .where(scores.c.project_id == project_id, scores.c.trace_id == trace_id)
                    .order_by(scores.c.id)
                )
            ]
        inherited = dict(trace_row._mapping) if trace_row is not None else {}
        for row in span_rows:
            for column, value in inherited.items():  # spans exported apart from the one that set them
                if row[column] is None:
                    row[column] = value
            payload = payloads.get(row["span_id"])
            aad_in, aad_out = (row_aad("span_payloads", side, project_id) for side in ("input", "output"))
            row["input"] = payload_value(open_text(self._sealer, payload.input if payload else None, aad_in))
            row["output"] = payload_value(
                open_text(self._sealer, payload.output if payload else None, aad_out)
            )
        return {"trace_id": trace_id, "spans": span_rows, "scores": score_rows}


def span_list_query(project_id: int, f: TraceFilter, limit: int, cursor: str | None) -> Select[Any]:
    """One keyset page (``limit`` rows, newest first, with the row id) of the span list.

    Trace-level filters (user, session, environment, release, tags) match a span's own
    value, else its trace's, whichever export carried it. User, session and tags are looked
    up through the traces they pick (``_traces_picked``).
    """
    s = spans.c
    start: ColumnElement[int] = s.start_time_unix_nano
    row_id: ColumnElement[int] = s.id
    cond: list[ColumnElement[bool]] = []
    source: Any = SPANS_WITH_TRACE
    by_metadata = bool(f.metadata) and f.trace_id is None
    picked = None if by_metadata or f.trace_id is not None else _traces_picked(project_id, f)
    if by_metadata:
        # The spans carrying the first metadata pair, newest first, read from span_metadata's
        # (project, key, value, start) range: its rows hold their span's start, so the range is
        # in the list's order; each row's span is found through its trace row and the spans'
        # key. Walking the project's spans and probing each (as before) read all of them when
        # few matched: 1.6 s at 10M on PostgreSQL for a pair on 1 trace in 500.
        m, on_metadata = _metadata_span_rows(project_id, f)
        start = m.c.start_time_unix_nano
        cond.extend(on_metadata)
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
    if f.model is not None:
        cond.append(or_(s.request_model == f.model, s.response_model == f.model))
    for column, value in ((s.provider, f.provider), (s.operation, f.operation)):
        if value is not None:
            cond.append(column == value)
    cond.extend(_span_attribute_conditions(f, joined=picked is None))
    if f.status == "error":
        cond.append(s.status_code == 2)
    elif f.status == "ok":
        cond.append(s.status_code != 2)
    if f.name:
        cond.append(s.name.ilike(_like(f.name), escape="\\"))
    cond.extend(_span_content_conditions(project_id, f, metadata=not by_metadata))
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


def _trace_picks(t: Any, f: TraceFilter) -> list[ColumnElement[bool]]:
    """The user, session and tag conditions of ``f`` on the trace rows ``t``."""
    cond: list[ColumnElement[bool]] = [t[name] == value for name, value in _picking(f)]
    if f.tags:  # implies the partial index of tagged traces: untagged ones are never read
        cond.append(t.tags.is_not(None))
    cond.extend(ArrayHas(t.tags, tag) for tag in f.tags)
    return cond


def _picking(f: TraceFilter) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in (("user_id", f.user_id), ("session_id", f.session_id))
        if value is not None
    ]


def _traces_picked(project_id: int, f: TraceFilter) -> Select[Any] | None:
    """Row ids of the project's traces matching ``f``'s user, session and tags (None when it
    names none), read from the traces' own indexes: walking the spans newest first and testing
    each read all 10M of them at 10M spans on PostgreSQL for a tag no span has (13 s).

    A trace row keeps the first value exported for its trace, so a span exported later with
    a user of its own unlike its trace's is listed under neither: not under its trace's user
    (it has its own), not under its own (its trace is not that user's, in the trace list too).
    """
    if not _picking(f) and not f.tags:
        return None
    t = traces.c
    cond = [t.project_id == project_id, *_trace_picks(t, f)]
    if f.start_to_ns is not None:  # a trace starts no later than its spans
        cond.append(t.start_time_unix_nano < f.start_to_ns)
    return select(t.id).where(*cond)


def _span_content_conditions(
    project_id: int, f: TraceFilter, *, metadata: bool = True
) -> list[ColumnElement[bool]]:
    """Conditions on a span's own content: metadata attributes (unless ``metadata`` is
    false: the query reads them from ``span_metadata`` itself) and payload text.

    A query with no searchable word (only punctuation) matches nothing rather than all.
    """
    pairs = f.metadata if metadata else ()
    cond: list[ColumnElement[bool]] = [_span_has_metadata(spans.c, k, v) for k, v in pairs]
    if f.q is not None:
        words = query_words(f.q)
        cond.append(SpanTextMatch(spans.c.id, project_id, words) if words else false())
    return cond


def _metadata_is(m: Any, key: str, value: str) -> ColumnElement[bool]:
    """Key and value as stored: cut to the column lengths (``rows.metadata_text``)."""
    return and_(m.key == key[:METADATA_KEY_CHARS], m.value == value[:METADATA_VALUE_CHARS])


def _span_has_metadata(s: Any, key: str, value: str) -> ColumnElement[bool]:
    """The span ``s`` carries metadata ``key`` = ``value`` (one primary-key probe)."""
    m = span_metadata.alias()
    return exists().where(
        m.c.project_id == s.project_id,
        m.c.trace_id == s.trace_id,
        m.c.span_id == s.span_id,
        _metadata_is(m.c, key, value),
    )


def _walk_metadata(f: TraceFilter) -> bool:
    """Whether the list should walk ``span_metadata`` (``TraceQueries._metadata_walk``): not
    when a user, session, release or trace id narrows the list to one short index range of
    its own, which the single query reads faster than the walk finds the same traces."""
    narrow = (f.user_id, f.session_id, f.release, f.trace_id)
    return bool(f.metadata) and all(value is None for value in narrow)


def _metadata_span_rows(project_id: int, f: TraceFilter) -> tuple[Any, list[ColumnElement[bool]]]:
    """An alias of ``span_metadata`` and the conditions selecting the rows of spans that
    carry every metadata pair of ``f`` (the same span, as the JSON filter before ADR 0028):
    the first pair reads one index range, the others are probed on its spans. A span of a
    trace starts no earlier than the trace, so the list's lower time bound narrows the
    range too."""
    (key, value), rest = f.metadata[0], f.metadata[1:]
    m = span_metadata.alias()
    cond = [m.c.project_id == project_id, _metadata_is(m.c, key, value)]
    if f.start_from_ns is not None:
        cond.append(m.c.start_time_unix_nano >= f.start_from_ns)
    cond.extend(_span_has_metadata(m.c, k, v) for k, v in rest)
    return m, cond


def _metadata_traces(project_id: int, f: TraceFilter) -> Select[Any]:
    """Ids of the traces with a span carrying every metadata pair of ``f``."""
    m, cond = _metadata_span_rows(project_id, f)
    return select(m.c.trace_id).where(*cond)


def _before(c: Any, start: int, trace_id: str) -> ColumnElement[bool]:
    """Rows after (start, trace_id) in the newest-first order of ``c``'s table."""
    return and_(
        c.start_time_unix_nano <= start,  # bounds the index range; the OR alone would not
        or_(c.start_time_unix_nano < start, and_(c.start_time_unix_nano == start, c.trace_id < trace_id)),
    )


def payload_value(text: str | None) -> Any:
    """A stored payload as data: its JSON parsed, or the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
