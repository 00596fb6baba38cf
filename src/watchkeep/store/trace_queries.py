"""Read side of traces and spans: filtered, keyset-paginated, always scoped to a project.

Trace pages come from the ``traces`` table (one row per trace, indexed by project and
start time); counters for the page's traces (spans, tokens, cost, models) are summed
from ``spans`` on read, which costs one indexed query for the whole page and can never
double count a replayed span.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import Engine, exists, func, or_, select
from sqlalchemy.sql import ColumnElement

from watchkeep.store.rows import TRACE_ATTRIBUTE_COLUMNS
from watchkeep.store.sealing import Sealer, open_text, row_aad
from watchkeep.store.span_list import (
    RESOURCE_ATTRIBUTES,
    SPAN_FIELDS,
    SPANS_WITH_RESOURCE,
    span_list_query,
    span_page,
)
from watchkeep.store.tables import scores, span_payloads, spans, traces
from watchkeep.store.trace_attributes import (
    spans_of_traces,
)
from watchkeep.store.trace_filter import (
    METADATA_WALK_STEPS,
    InvalidCursor,
    TraceFilter,
    decode_cursor,
    encode_cursor,
    like_pattern,
    metadata_span_rows,
    metadata_traces,
    past_in_list_order,
    span_content_conditions,
    trace_picks,
    walk_metadata,
)
from watchkeep.store.trace_lookups import (
    beside_lookup,
    lookup_of,
    lookup_page,
    picked_traces,
    read_lookup_mark,
)

# Importers of the trace and span lists' cursor and filter types find them here too.
__all__ = [
    "InvalidCursor",
    "Page",
    "TraceFilter",
    "TraceQueries",
    "TraceSummary",
    "decode_cursor",
    "encode_cursor",
    "payload_value",
    "span_list_query",
]

T = TypeVar("T")


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


EXPORT_BATCH = 2000  # spans a query of the export stream


class TraceQueries:
    """Lists traces and spans and loads whole traces for one project."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        self._engine = engine
        self._sealer = sealer  # opens encrypted payloads (None: they are plaintext)

    def trace_conditions(
        self, project_id: int, f: TraceFilter, *, walked: Sequence[str] | None = None, looked_up: bool = False
    ) -> list[ColumnElement[bool]]:
        """``f`` as conditions on ``traces``; ``walked``: ids the metadata walk found, which
        stand for the metadata subquery; ``looked_up``: the rows are those of ``f``'s user or
        session already (``lookup_page``), else those pick the candidate rows."""
        t = traces.c
        # Given their ids (``lookup_page``), no index of the project's traces is to be walked.
        cond: list[ColumnElement[bool]] = [(t.project_id + 0 if looked_up else t.project_id) == project_id]
        picked = None if looked_up else picked_traces(project_id, f)
        if picked is not None:
            cond.append(t.id.in_(picked))
        if f.start_from_ns is not None:
            cond.append(t.start_time_unix_nano >= f.start_from_ns)
        if f.start_to_ns is not None:
            cond.append(t.start_time_unix_nano < f.start_to_ns)
        cond.extend(trace_picks(t, beside_lookup(f)))  # the lookup rows settle their user or session
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
            cond.append(t.name.ilike(like_pattern(f.name), escape="\\"))
        if f.metadata:  # one index range of span_metadata picks the candidate traces
            cond.append(t.trace_id.in_(metadata_traces(project_id, f) if walked is None else walked))
        span_cond = span_content_conditions(project_id, f)
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
        at: tuple[int, str] | None = None
        if cursor is not None:
            start, trace_id = decode_cursor(cursor, (int, str))
            at = (start, trace_id)
            after.append(past_in_list_order(t, start, trace_id))
        with self._engine.connect() as conn:
            rows = self._metadata_walk(conn, project_id, f, after, limit + 1) if walk_metadata(f) else None
            if rows is None and lookup_of(f) is not None:
                conditions = self.trace_conditions(project_id, f, looked_up=True)
                page = lookup_page(project_id, f, conditions, at, limit + 1, read_lookup_mark(conn))
                rows = list(conn.execute(page).all())
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
        m, cond = metadata_span_rows(project_id, f)
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
            cond = [*cond, past_in_list_order(m.c, last.start_time_unix_nano, last.trace_id)]
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
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in span_page(conn, project_id, f, limit + 1, cursor)]
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
                # the walk, not the picked traces: each batch would read and sort all of theirs
                result = conn.execute(span_list_query(project_id, f, batch_size, cursor, walk=True))
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


def payload_value(text: str | None) -> Any:
    """A stored payload as data: its JSON parsed, or the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
