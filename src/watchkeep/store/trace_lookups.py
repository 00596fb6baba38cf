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

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, delete, func, select, text, union_all
from sqlalchemy.sql import ColumnElement, Select

from watchkeep.store.clock import now_ns
from watchkeep.store.engine import is_sqlite
from watchkeep.store.index_marks import (
    GAP_WAIT_NS,
    contiguous,
    live_projects,
    lock_mark,
    move_mark,
    read_mark,
)
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
_PENDING = text(
    "SELECT id, trace_row_id, ingested_at_unix_nano FROM spans WHERE id > :mark ORDER BY id LIMIT :n"
)


def lookup_of(f: TraceFilter) -> tuple[int, str] | None:
    """The (kind, value) whose lookup rows pick ``f``'s traces: its user, else its session
    (the other is checked on each trace row); None when it names neither."""
    if f.user_id is not None:
        return USER, f.user_id
    if f.session_id is not None:
        return SESSION, f.session_id
    return None


def unlooked_traces() -> Select[Any]:
    """Row ids of the traces with a span past the mark: their lookup rows may be missing or
    stale, so readers take them as they are. Of every project: a range of the spans' row
    ids, few past the mark; by project it would be read through the project's index of
    every span it has (SQLite chose that one)."""
    s = spans.c
    mark = (
        select(search_index_state.c.position).where(search_index_state.c.name == STATE_NAME).scalar_subquery()
    )
    return select(s.trace_row_id).where(s.id > mark)


def looked_up_traces(project_id: int, kind: int, value: str, start_to_ns: int | None = None) -> Select[Any]:
    """Row ids of a superset of the project's traces of this user or session (``kind``)
    that start before ``start_to_ns``: their lookup rows, and the traces past the mark.
    Callers test each trace row's own values."""
    c = trace_lookups.c
    cond = [c.project_id == project_id, c.kind == kind, c.value == value]
    if start_to_ns is not None:  # a stale row's start is later than its trace's: that trace is past the mark
        cond.append(c.start_time_unix_nano < start_to_ns)
    return union_all(select(c.trace_row_id).where(*cond), unlooked_traces()).subquery().select()


def picked_traces(project_id: int, f: TraceFilter) -> Select[Any] | None:
    """``looked_up_traces`` of ``f``'s user, else its session (None when it names neither)."""
    found = lookup_of(f)
    return None if found is None else looked_up_traces(project_id, *found, f.start_to_ns)


def lookup_page(
    project_id: int,
    f: TraceFilter,
    conditions: Sequence[ColumnElement[bool]],
    after: tuple[int, str] | None,
    limit: int,
) -> Select[Any]:
    """The first ``limit`` trace rows in list order (newest first) of those ``f``'s user or
    session picks that meet ``conditions`` (on ``traces``), past the cursor ``after``.

    Two ordered reads merged: the lookup rows' range in list order, each joined to its
    trace row (the lookup row holds its trace's start and id, so the range is the page's
    order), leaving out the traces past the mark; and those traces themselves."""
    found = lookup_of(f)
    assert found is not None, "lookup_page needs a user or a session"
    kind, value = found
    c, t = trace_lookups.c, traces.c
    unlooked = unlooked_traces()
    looked: list[ColumnElement[bool]] = [
        c.project_id == project_id,
        c.kind == kind,
        c.value == value,
        c.trace_row_id.not_in(unlooked),
    ]
    if f.start_from_ns is not None:
        looked.append(c.start_time_unix_nano >= f.start_from_ns)
    if f.start_to_ns is not None:
        looked.append(c.start_time_unix_nano < f.start_to_ns)
    tail: list[ColumnElement[bool]] = [t.id.in_(unlooked)]
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
    ids = sorted(set(trace_row_ids))
    with engine.begin() as conn:
        _replace(conn, ids, _lookup_rows(conn, ids), is_sqlite(engine.url.drivername))


def _lookup_rows(conn: Any, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """The lookup rows of these traces (columns in table order), sorted as the key."""
    t = traces.c
    columns = (t.id, t.project_id, t.trace_id, t.start_time_unix_nano, t.user_id, t.session_id)
    found: list[Any] = []
    for at in range(0, len(ids), _CHUNK):
        found.extend(conn.execute(select(*columns).where(t.id.in_(ids[at : at + _CHUNK]))).all())
    return sorted(
        (int(r.project_id), kind, getattr(r, column), int(r.start_time_unix_nano), r.trace_id, int(r.id))
        for r in found
        for column, kind in KINDS
        if getattr(r, column) is not None
    )


def _replace(conn: Any, ids: Sequence[int], rows: list[tuple[Any, ...]], sqlite: bool) -> None:
    """Replace the lookup rows of the traces ``ids`` by ``rows`` (those of live projects).

    Only traces stored before the newest looked-up one can have rows to replace (row ids
    grow); the rest, most of a batch, are new. The rows go in through the driver: through
    SQLAlchemy's executemany of dictionaries a batch held SQLite's write lock for tens of ms."""
    live = live_projects(conn, {r[0] for r in rows}, sqlite)
    newest = conn.execute(select(func.max(trace_lookups.c.trace_row_id))).scalar()
    drop_lookups(conn, [i for i in ids if newest is not None and i <= newest])
    kept = [r for r in rows if r[0] in live]
    if not kept:
        return
    if sqlite:
        conn.exec_driver_sql(f"INSERT INTO trace_lookups ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", kept)
    else:
        conn.exec_driver_sql(
            f"INSERT INTO trace_lookups ({_COLUMNS}) SELECT * FROM unnest(%s::bigint[], %s::smallint[], "
            "%s::text[], %s::bigint[], %s::text[], %s::bigint[])",
            tuple(list(column) for column in zip(*kept, strict=True)),
        )


class TraceLookupIndexer:
    """Writes the lookup rows of the traces new spans touched, in batches, on a thread.

    A pass waits until ``min_spans`` are past the mark or the oldest of them is ``max_age``
    seconds old: a batch dirties about one leaf per user and session it names, so under
    load larger batches cost less a trace (the readers take the traces past the mark as
    they are meanwhile, ``unlooked_traces``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 50_000,
        min_spans: int = 25_000,
        max_age: float = 3.0,
        interval: float = 1.0,
    ) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine.url.drivername)
        self._batch = batch  # spans a transaction
        self._min_spans = min_spans
        self._max_age_ns = int(max_age * 1e9)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchkeep-trace-lookups", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what is left is indexed by the next process to run)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def catch_up(self, timeout: float = 10.0) -> int:
        """Index until no span is left past the mark (tools, benchmarks); the spans passed.
        ``timeout`` bounds waiting without progress (another process's pass, an id gap)."""
        total = 0
        deadline = time.monotonic() + timeout
        while True:
            done = self.index_batch()
            total += done
            if done:
                deadline = time.monotonic() + timeout
            elif not self.due(0, 0) or time.monotonic() > deadline:
                return total
            else:
                time.sleep(0.05)

    def due(self, min_spans: int, max_age_ns: int) -> bool:
        """Whether ``min_spans`` spans are past the mark, or the oldest of them is at least
        ``max_age_ns`` old (two indexed look-ups and one probe)."""
        with self._engine.connect() as conn:
            mark = read_mark(conn, STATE_NAME)
            if (
                min_spans
                and int(conn.execute(text("SELECT max(id) FROM spans")).scalar() or 0) - mark >= min_spans
            ):
                return True
            oldest = conn.execute(
                text("SELECT ingested_at_unix_nano FROM spans WHERE id > :m ORDER BY id LIMIT 1"), {"m": mark}
            ).scalar()
        return oldest is not None and now_ns() - int(oldest) >= max_age_ns

    def index_batch(self) -> int:
        """Write the lookup rows of the traces of up to ``batch`` spans past the mark; the
        spans passed. The trace rows are read before the write transaction: a trace a
        writer changes meanwhile gains a span past the new mark and is written again."""
        with self._engine.connect() as conn:
            mark = read_mark(conn, STATE_NAME)
            accepted = contiguous(
                conn.execute(_PENDING, {"mark": mark, "n": self._batch}), mark, now_ns() - GAP_WAIT_NS
            )
            if not accepted:
                return 0
            ids = sorted({int(r.trace_row_id) for r in accepted})
            rows = _lookup_rows(conn, ids)
        with self._engine.begin() as conn:
            if lock_mark(conn, STATE_NAME, self._sqlite) != mark:
                return 0  # another process wrote these meanwhile
            _replace(conn, ids, rows, self._sqlite)
            move_mark(conn, STATE_NAME, int(accepted[-1].id))
        return len(accepted)

    def _run(self) -> None:
        name_os_thread("wk-lookups")  # its CPU apart in top -H and the ingest benchmark
        while not self._stop.wait(self._interval):
            try:
                if self.due(self._min_spans, self._max_age_ns):
                    while self.index_batch() == self._batch and not self._stop.is_set():
                        pass
            except Exception:
                log.exception("trace lookup indexing failed; retrying next pass")
