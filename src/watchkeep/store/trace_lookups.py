"""The traces of each user and session, indexed behind the commit (ADR 0034).

Two indexes on ``traces`` by (project, user or session, start, trace) cost every new trace
a random leaf each at commit, a third of SQLite's ingest writer at 2M stored spans.
Instead ``TraceLookupIndexer`` tails ``spans.id`` past its mark (``index_marks``) and
writes the ``trace_lookups`` rows of the traces those spans touched, sorted, in one
transaction a batch: a batch of thousands of traces dirties one leaf per user and session
it names, not one per trace.

Every change to a trace row comes with a span (the ingest upsert merges a trace from its
spans), so the traces of the spans past the mark are the only ones whose rows may be
missing or stale. Readers take the lookup rows of the others and those traces as they are
(``picked_traces``, ``lookup_page``); the pass keeps that tail short.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, union_all
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store import index_gaps, index_marks, void_ids
from watchkeep.store.clock import now_ns
from watchkeep.store.engine import is_sqlite
from watchkeep.store.index_marks import MarkPass
from watchkeep.store.index_tables import search_index_state, trace_lookups
from watchkeep.store.maintenance import name_os_thread
from watchkeep.store.tables import spans, traces
from watchkeep.store.trace_filter import TraceFilter, past_in_list_order

log = logging.getLogger(__name__)

STATE_NAME = "trace_lookups"
USER, SESSION = 0, 1
KINDS = (("user_id", USER), ("session_id", SESSION))
_CHUNK = 1000  # ids a statement
_COLUMNS = ", ".join(c.name for c in trace_lookups.c)
_PENDING = text("SELECT id, ingested_at_unix_nano FROM spans WHERE id > :mark ORDER BY id LIMIT :n")
_LAST_OF_BATCH = text("SELECT max(id) FROM spans WHERE id > :mark AND id <= :mark + :n")
_TOUCHED = text("SELECT DISTINCT trace_row_id FROM spans WHERE id > :mark AND id <= :upto")
_TRACES_OF = text("SELECT DISTINCT trace_row_id FROM spans WHERE id = ANY(CAST(:ids AS bigint[]))")


def lookup_of(f: TraceFilter) -> tuple[int, str] | None:
    """The (kind, value) whose lookup rows pick ``f``'s traces: its user, else its session
    (the other is checked on each trace row); None when it names neither."""
    if f.user_id is not None:
        return USER, f.user_id
    if f.session_id is not None:
        return SESSION, f.session_id
    return None


def beside_lookup(f: TraceFilter) -> TraceFilter:
    """``f`` without the user or session its lookup rows already settle (``lookup_of``):
    tested again on the trace rows, it led PostgreSQL to scan them all for it (its
    estimate of a user's traces is far below a real user's share)."""
    found = lookup_of(f)
    if found is None:
        return f
    return replace(f, user_id=None) if found[0] == USER else replace(f, session_id=None)


def read_lookup_mark(conn: Any) -> int:
    """The lookups' mark, to give the queries below as a value (``mark``)."""
    return index_marks.read_mark(conn, STATE_NAME)


def lookup_range(project_id: int, kind: int, value: str) -> list[ColumnElement[bool]]:
    """The lookup rows of one user or session (``kind``) of the project: one range of the key."""
    c = trace_lookups.c
    return [c.project_id == project_id, c.kind == kind, c.value == value]


def unlooked_traces(mark: int | None = None) -> Select[Any]:
    """Row ids of the traces with a span past the mark: their lookup rows may be missing or
    stale, so readers take them as they are. Of every project: a range of the spans' row
    ids, few past the mark; by project it would be read through the project's index of
    every span it has (SQLite chose that one).

    ``mark``, read beforehand (``read_lookup_mark``), lets PostgreSQL plan for the few spans
    past it: against a subquery it assumes a third of all spans and scans traces instead."""
    s = spans.c
    if mark is None:
        position = search_index_state.c.position
        return select(s.trace_row_id).where(
            s.id > select(position).where(search_index_state.c.name == STATE_NAME).scalar_subquery()
        )
    return select(s.trace_row_id).where(s.id > mark)


def looked_up_traces(
    project_id: int,
    kind: int,
    value: str,
    start_to_ns: int | None = None,
    mark: int | None = None,
    end_from_ns: int | None = None,
) -> Select[Any]:
    """Row ids of the project's traces of this user or session (``kind``) that start
    before ``start_to_ns`` and end at or after ``end_from_ns``: the traces' lookup rows, but
    for the traces past the mark, which are tested as they are. The lookup rows carry both
    times, so the traces themselves are not read but for those past the mark."""
    c, t = trace_lookups.c, traces.c
    unlooked = unlooked_traces(mark)
    cond = [*lookup_range(project_id, kind, value), c.trace_row_id.not_in(unlooked)]
    fresh = [t.id.in_(unlooked), t.project_id + 0 == project_id, t[KINDS[kind][0]] == value]
    if start_to_ns is not None:
        cond.append(c.start_time_unix_nano < start_to_ns)
        fresh.append(t.start_time_unix_nano + 0 < start_to_ns)
    if end_from_ns is not None:
        cond.append(c.end_time_unix_nano >= end_from_ns)
        fresh.append(t.end_time_unix_nano + 0 >= end_from_ns)
    return union_all(select(c.trace_row_id).where(*cond), select(t.id).where(*fresh)).subquery().select()


def picked_traces(
    project_id: int, f: TraceFilter, mark: int | None = None, end_from_ns: int | None = None
) -> Select[Any] | None:
    """``looked_up_traces`` of ``f``'s user, else its session (None when it names neither)."""
    found = lookup_of(f)
    if found is None:
        return None
    return looked_up_traces(project_id, *found, f.start_to_ns, mark, end_from_ns)


def lookup_page(
    project_id: int,
    f: TraceFilter,
    conditions: Sequence[ColumnElement[bool]],
    after: tuple[int, str] | None,
    limit: int,
    mark: int | None = None,
) -> Select[Any]:
    """The first ``limit`` trace rows in list order (newest first) of those ``f``'s user or
    session picks that meet ``conditions`` (on ``traces``; ``beside_lookup(f)``'s), past
    the cursor ``after``.

    Two ordered reads merged: the lookup rows' range in list order, each joined to its
    trace row (the lookup row holds its trace's start and id, so the range is the page's
    order), leaving out the traces past the mark; and those traces themselves."""
    found = lookup_of(f)
    assert found is not None, "lookup_page needs a user or a session"
    kind, value = found
    c, t = trace_lookups.c, traces.c
    unlooked = unlooked_traces(mark)
    looked = [*lookup_range(project_id, kind, value), c.trace_row_id.not_in(unlooked)]
    if f.start_from_ns is not None:
        looked.append(c.start_time_unix_nano >= f.start_from_ns)
    if f.start_to_ns is not None:
        looked.append(c.start_time_unix_nano < f.start_to_ns)
    tail: list[ColumnElement[bool]] = [t.id.in_(unlooked), t[KINDS[kind][0]] == value]
    if after is not None:
        looked.append(past_in_list_order(c, *after))
        tail.append(past_in_list_order(t, *after))
    from_lookups = (
        select(traces)
        .select_from(trace_lookups.join(traces, t.id == c.trace_row_id))
        .where(*looked, *conditions)
        .order_by(c.start_time_unix_nano.desc(), c.trace_id.desc())
        .limit(limit)
    )
    # Sorted, never walked in order: the traces' time index would read the project's every
    # trace to find the few past the mark.
    past_mark = (
        select(traces)
        .where(*tail, *conditions)
        .order_by((t.start_time_unix_nano + 0).desc(), t.trace_id.desc())
        .limit(limit)
    )
    both = union_all(select(from_lookups.subquery()), select(past_mark.subquery())).subquery()
    return select(both).order_by(both.c.start_time_unix_nano.desc(), both.c.trace_id.desc()).limit(limit)


def drop_lookups(conn: Any, trace_row_ids: Sequence[int]) -> None:
    """Delete the lookup rows of these traces (before the traces themselves)."""
    for at in range(0, len(trace_row_ids), _CHUNK):
        chunk = list(trace_row_ids[at : at + _CHUNK])
        conn.execute(delete(trace_lookups).where(trace_lookups.c.trace_row_id.in_(chunk)))


def relook(engine: Engine, trace_row_ids: Sequence[int]) -> None:
    """Write the lookup rows of these traces as their rows are now: for tools and tests
    that write trace rows without their spans, which the pass would not see."""
    ids = ", ".join(str(int(i)) for i in sorted(set(trace_row_ids))) or "NULL"
    with engine.begin() as conn:
        _rewrite(conn, f"SELECT id FROM traces WHERE id IN ({ids})", {}, is_sqlite(engine.url.drivername))


# The lookup rows of the traces ``{touched}`` names, of the live projects: each trace row
# read once (CROSS JOIN keeps SQLite from reading them again for the second kind).
_ROWS = (
    "SELECT t.project_id, k.kind, CASE k.kind WHEN 0 THEN t.user_id ELSE t.session_id END AS value, "
    "t.start_time_unix_nano, t.trace_id, t.id, t.end_time_unix_nano FROM traces AS t CROSS JOIN "
    f"(SELECT {USER} AS kind UNION ALL SELECT {SESSION}) AS k "
    "WHERE t.id IN ({touched}) AND t.project_id + 0 IN ({live}) "
    "AND CASE k.kind WHEN 0 THEN t.user_id ELSE t.session_id END IS NOT NULL"
)


def _rewrite(conn: Any, touched: str, params: dict[str, Any], sqlite: bool) -> None:
    """Replace the lookup rows of the traces the query ``touched`` names by their rows as
    they are now (those of live projects), in SQL: the traces are read and the rows sorted
    and inserted by the database, which built in Python cost about 10 µs a span.

    Only traces stored before the newest looked-up one can have rows to delete (row ids
    grow); the rest, most of a batch, are new."""
    owners = conn.execute(text(f"SELECT DISTINCT project_id FROM traces WHERE id IN ({touched})"), params)
    live = index_marks.live_projects(conn, {int(r[0]) for r in owners}, sqlite)
    newest = conn.execute(select(func.max(trace_lookups.c.trace_row_id))).scalar()
    if newest is not None:
        conn.execute(
            text(
                "DELETE FROM trace_lookups WHERE trace_row_id IN "
                f"(SELECT id FROM traces WHERE id IN ({touched}) AND id <= :newest)"
            ),
            {**params, "newest": int(newest)},
        )
    if live:
        rows = _ROWS.format(touched=touched, live=", ".join(str(i) for i in sorted(live)))
        conn.execute(
            text(
                f"INSERT INTO trace_lookups ({_COLUMNS}) SELECT * FROM ({rows}) AS r ORDER BY 1, 2, 3, 4, 5"
            ),
            params,
        )


class TraceLookupIndexer(MarkPass):
    """Writes the lookup rows of the traces new spans touched, in batches, on a thread.

    A pass waits until ``min_spans`` are past the mark or the oldest of them is ``max_age``
    seconds old: a batch dirties about one leaf per user and session it names, so under
    load larger batches cost less a trace (the readers take the traces past the mark as
    they are meanwhile, ``unlooked_traces``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 100_000,
        min_spans: int = 60_000,
        max_age: float = 3.0,
        interval: float = 1.0,
    ) -> None:
        super().__init__("watchkeep-trace-lookups")
        self._engine = engine
        self._sqlite = is_sqlite(engine.url.drivername)
        self._batch = batch  # spans a transaction
        self._min_spans = min_spans
        self._max_age_ns = int(max_age * 1e9)
        self._interval = interval

    def behind(self) -> bool:
        """Whether a span is past the mark."""
        return self.due(0, 0)

    def due(self, min_spans: int, max_age_ns: int) -> bool:
        """Whether ``min_spans`` spans are past the mark, or the oldest of them is at least
        ``max_age_ns`` old (two indexed look-ups and one probe)."""
        with self._engine.connect() as conn:
            mark = index_marks.read_mark(conn, STATE_NAME)
            if (
                min_spans
                and int(conn.execute(text("SELECT max(id) FROM spans")).scalar() or 0) - mark >= min_spans
            ):
                return True
            oldest = conn.execute(
                text("SELECT ingested_at_unix_nano FROM spans WHERE id > :m ORDER BY id LIMIT 1"), {"m": mark}
            ).scalar()
            if oldest is None:  # a span committed behind the mark, into a gap it jumped
                return not self._sqlite and index_gaps.has_late(conn, STATE_NAME)
        return now_ns() - int(oldest) >= max_age_ns

    def index_batch(self) -> int:
        """Write the lookup rows of the traces of up to ``batch`` spans past the mark; the
        spans passed. One write transaction, which reads the trace rows as they are; on
        PostgreSQL also those of the spans committed into gaps it jumped before (``index_gaps``)."""
        with self._engine.connect() as conn:
            mark = index_marks.read_mark(conn, STATE_NAME)
            upto, jumped = self._batch_end(conn, mark)
            if upto is None and (self._sqlite or not index_gaps.has_late(conn, STATE_NAME)):
                return 0
        with self._engine.begin() as conn:
            if index_marks.lock_mark(conn, STATE_NAME, self._sqlite) != mark:
                return 0  # another process wrote these meanwhile
            # The traces' ids once, passed to each statement as one parameter: the spans'
            # range read again by each cost more than the rest of the statement.
            ids = (
                []
                if upto is None
                else [int(r[0]) for r in conn.execute(_TOUCHED, {"mark": mark, "upto": upto})]
            )
            late: list[int] = []
            if self._sqlite:
                _rewrite(conn, "SELECT value FROM json_each(:ids)", {"ids": json.dumps(ids)}, True)
            else:
                index_gaps.record(conn, STATE_NAME, jumped, now_ns())
                late = index_gaps.take_late(conn, STATE_NAME, now_ns())
                if late:  # their traces too: a late span may have named a user or moved a start
                    ids += [int(r[0]) for r in conn.execute(_TRACES_OF, {"ids": late})]
                _rewrite(conn, "SELECT unnest(CAST(:ids AS bigint[]))", {"ids": ids}, False)
            if upto is not None:
                index_marks.move_mark(conn, STATE_NAME, upto)
            if not self._sqlite:  # this pass alone prunes: two would wait on each other's rows
                void_ids.prune(conn, now_ns())
        return (0 if upto is None else upto - mark) + len(late)

    def _batch_end(self, conn: Any, mark: int) -> tuple[int | None, list[tuple[int, int]]]:
        """The last span id of the next batch (None: none past the mark) and the gaps in ids
        it jumps. SQLite commits one writer at a time, so every id a reader sees is
        committed; PostgreSQL's may not be (``index_marks.contiguous``)."""
        if self._sqlite:
            found = conn.execute(_LAST_OF_BATCH, {"mark": mark, "n": self._batch}).scalar()
            return (None if found is None else int(found)), []
        accepted, jumped = index_marks.passable(
            conn,
            conn.execute(_PENDING, {"mark": mark, "n": self._batch}),
            mark,
            now_ns() - self.gap_wait_ns,
            False,
        )
        return (int(accepted[-1].id) if accepted else None), jumped

    def _run(self) -> None:
        name_os_thread("wk-lookups")  # its CPU apart in top -H and the ingest benchmark
        while not self._stop.wait(self._interval):
            try:
                if self.due(self._min_spans, self._max_age_ns):
                    while self.index_batch() == self._batch and not self._stop.is_set():
                        pass
            except Exception:
                log.exception("trace lookup indexing failed; retrying next pass")
