"""Spans that commit behind a mark (ADR 0034, revision 0030): PostgreSQL draws span ids
before their transaction commits, so a pass may jump a gap whose spans commit later. The
attack: a writer held mid-transaction past the gap wait; its spans must still become
searchable and their trace found by its user once it commits. And ids drawn for
duplicates (revision 0031): no gap at all, or a tenant replaying its spans holds every
project's passes back and fills the gap ledger."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select, text

from tests.support.otlp_json import SEC, T0, attr, chat_trace, write_spans
from tests.support.tenant import unique
from watchkeep.devtools.postgres import TempPostgres
from watchkeep.store import index_gaps, void_ids
from watchkeep.store.engine import make_engine
from watchkeep.store.index_marks import contiguous
from watchkeep.store.index_tables import index_gaps as gaps_table
from watchkeep.store.index_tables import void_span_ids
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.tables import traces
from watchkeep.store.text_search import SearchIndexer
from watchkeep.store.trace_lookups import TraceLookupIndexer
from watchkeep.store.trace_queries import TraceFilter, TraceQueries


class _Row:
    def __init__(self, id: int, ingested_at_unix_nano: int) -> None:
        self.id = id
        self.ingested_at_unix_nano = ingested_at_unix_nano


def test_a_mark_waits_at_a_young_gap_and_names_the_old_gaps_it_jumps() -> None:
    rows = [_Row(11, 0), _Row(14, 0), _Row(15, 0), _Row(20, 99), _Row(21, 0)]
    accepted, jumped = contiguous(rows, 10, gap_before_ns=50)
    assert [r.id for r in accepted] == [11, 14, 15]
    assert jumped == [(12, 13)]  # 16-19 wait: the span after them is too young
    assert contiguous(rows, 10, gap_before_ns=100) == (rows, [(12, 13), (16, 19)])


def test_ids_the_writer_left_unused_are_no_gap() -> None:
    rows = [_Row(11, 99), _Row(14, 99), _Row(20, 0), _Row(23, 99)]
    void = [(12, 13), (16, 17), (21, 22)]
    accepted, jumped = contiguous(rows, 10, gap_before_ns=50, void=void)
    assert [r.id for r in accepted] == [11, 14, 20, 23]  # 15 and 18-19 are old enough to jump
    assert jumped == [(15, 15), (18, 19)]
    assert contiguous(rows, 10, gap_before_ns=-1, void=void)[0] == rows[:2]  # 15 may still fill


@given(st.data())
def test_a_mark_passes_what_is_stored_or_void_and_jumps_only_old_holes(data: st.DataObject) -> None:
    mark = data.draw(st.integers(0, 50))
    kinds = data.draw(st.lists(st.sampled_from("rvh"), max_size=40))  # row, void, hole
    ages = data.draw(st.lists(st.integers(0, 3), min_size=len(kinds), max_size=len(kinds)))
    ids = range(mark + 1, mark + 1 + len(kinds))
    rows = [_Row(i, age) for i, k, age in zip(ids, kinds, ages, strict=True) if k == "r"]
    void = void_ids.unused_ranges([i for i, k in zip(ids, kinds, strict=True) if k == "v"], set())
    accepted, jumped = contiguous(rows, mark, gap_before_ns=1, void=void)
    by_id = {r.id: r for r in rows}
    expected: list[_Row] = []  # the model: walk the ids one by one
    holes: list[int] = []
    waiting: list[int] = []
    for i, kind, age in zip(ids, kinds, ages, strict=True):
        if kind == "h":
            waiting.append(i)
        elif kind == "r":
            if waiting and age > 1:
                break
            expected.append(by_id[i])
            holes += waiting
            waiting = []
    assert accepted == expected
    assert jumped == void_ids.unused_ranges(holes, set())


@given(st.data())
def test_what_is_missing_of_a_gap_is_every_id_not_found_in_it(data: st.DataObject) -> None:
    first = data.draw(st.integers(1, 1000))
    last = data.draw(st.integers(first, first + 60))
    found = sorted(data.draw(st.sets(st.integers(first, last))))
    rest = index_gaps.missing(first, last, found)
    ids = [i for a, b in rest for i in range(a, b + 1)]
    assert ids == [i for i in range(first, last + 1) if i not in set(found)]
    assert all(a <= b for a, b in rest)
    assert all(b + 1 < c for (_, b), (c, _) in itertools.pairwise(rest))  # apart, in order


@pytest.fixture
def pg_engine(postgres: TempPostgres | str) -> Iterator[Engine]:
    """A database of its own on PostgreSQL: no other test's spans pass its marks."""
    if isinstance(postgres, str):
        pytest.skip("needs a throwaway PostgreSQL cluster to create a database in")
    engine = make_engine(postgres.create_database(f"g_{uuid.uuid4().hex[:12]}"))
    upgrade(engine)
    yield engine
    engine.dispose()


def _user_trace(n: int, prompt: str) -> list[dict[str, object]]:
    spans = chat_trace(n, prompt, "noted")
    spans[0]["attributes"] = [attr("watchkeep.user.id", "ann")]
    return spans


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar_one()
        )


def test_spans_committed_into_a_gap_the_marks_jumped_are_passed_later(pg_engine: Engine) -> None:
    engine = pg_engine
    project = ProjectRepository(engine).get_or_create(unique("gaps")).id
    search, lookups = SearchIndexer(engine), TraceLookupIndexer(engine)
    queries = TraceQueries(engine)
    for indexer in (search, lookups):
        indexer.gap_wait_ns = 0  # the span after a gap is "old enough" at once
    write_spans(engine, project, _user_trace(1, "first aardvark"))
    # A transaction holding the late trace's row uncommitted: the late writer draws its span
    # ids, then waits at its trace upsert until the holder ends.
    holder = engine.connect()
    held = holder.begin()
    holder.execute(
        insert(traces).values(
            project_id=project,
            trace_id=f"{2:032x}",
            start_time_unix_nano=T0,
            end_time_unix_nano=T0 + SEC,
            has_error=False,
        )
    )
    late = threading.Thread(target=write_spans, args=(engine, project, _user_trace(2, "late zebra")))
    late.start()
    try:
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(engine):
            assert time.monotonic() < deadline, "the late writer never reached the held trace row"
            time.sleep(0.05)
        write_spans(engine, project, _user_trace(3, "third aardvark"))  # higher ids, committed first
        assert search.catch_up(timeout=0.5) == 4  # traces 1 and 3, over the late gap
        assert lookups.catch_up(timeout=0.5) >= 4  # (it counts the ids it moved over)
        found = queries.list_traces(project, TraceFilter(user_id="ann"), limit=10).items
        assert sorted(t.trace_id for t in found) == [f"{n:032x}" for n in (1, 3)]
    finally:
        held.rollback()
        holder.close()
        late.join(30)
    with engine.connect() as conn:
        assert conn.execute(select(gaps_table.c.name).order_by(gaps_table.c.name)).scalars().all() == [
            "payload_text",
            "trace_lookups",
        ]
    for indexer in (search, lookups):
        assert indexer.catch_up(timeout=0.5) == 2  # the late trace's spans, committed now
    spans = queries.list_spans(project, TraceFilter(q="zebra"), limit=10).items
    assert [s["trace_id"] for s in spans] == [f"{2:032x}"]
    found = queries.list_traces(project, TraceFilter(user_id="ann"), limit=10).items
    assert sorted(t.trace_id for t in found) == [f"{n:032x}" for n in (1, 2, 3)]
    with engine.connect() as conn:  # filled: nothing left to revisit
        assert conn.execute(select(gaps_table.c.name)).first() is None
    for indexer in (search, lookups):
        assert indexer.catch_up(timeout=0.5) == 0


def test_a_gap_keeps_what_is_still_missing_is_bounded_and_is_dropped_after_an_hour(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = pg_engine
    project = ProjectRepository(engine).get_or_create(unique("gaps")).id
    write_spans(engine, project, _user_trace(1, "two spans"))
    with engine.connect() as conn:
        first, second = conn.execute(text("SELECT id FROM spans ORDER BY id")).scalars().all()
    now = time.time_ns()
    with engine.begin() as conn:
        index_gaps.record(conn, "test", [(first - 5, second + 3)], now)
        assert index_gaps.take_late(conn, "test", now) == [first, second]
        kept = conn.execute(select(gaps_table.c.first_id, gaps_table.c.last_id).order_by("first_id")).all()
        assert [tuple(r) for r in kept] == [(first - 5, first - 1), (second + 1, second + 3)]
        assert index_gaps.take_late(conn, "test", now) == []  # nothing new in what is left
        assert index_gaps.take_late(conn, "test", now + index_gaps.GAP_RETIRE_NS + 1) == []
        assert conn.execute(select(gaps_table.c.first_id)).first() is None  # retired
        monkeypatch.setattr(index_gaps, "MAX_GAPS", 2)
        index_gaps.record(conn, "test", [(1, 1), (3, 3), (5, 6)], now)
        assert conn.execute(select(gaps_table.c.first_id).order_by("first_id")).scalars().all() == [3, 5]


@pytest.mark.parametrize("wait_ns", [index_gaps.GAP_RETIRE_NS, 0], ids=["held-an-hour", "jumped-at-once"])
def test_ids_drawn_for_duplicates_hold_no_pass_back_and_fill_no_ledger(
    pg_engine: Engine, wait_ns: int
) -> None:
    engine = pg_engine
    project = ProjectRepository(engine).get_or_create(unique("void")).id
    search, lookups = SearchIndexer(engine), TraceLookupIndexer(engine)
    for indexer in (search, lookups):
        # A hole holds the mark an hour (the passes would stall), or is jumped at once (and
        # kept in the ledger): the writer's record must spare both.
        indexer.gap_wait_ns = wait_ns
    write_spans(engine, project, _user_trace(1, "first aardvark"))
    assert search.catch_up(timeout=0.5) == 2
    # The attack: the same spans again, beside a new trace's, again and again.
    for n in (3, 4, 5):
        write_spans(engine, project, _user_trace(1, "first aardvark") + _user_trace(n, f"new zebra{n}"))
    assert search.catch_up(timeout=0.5) == 6
    assert lookups.catch_up(timeout=0.5) >= 8
    spans = TraceQueries(engine).list_spans(project, TraceFilter(q="zebra5"), limit=10).items
    assert [s["trace_id"] for s in spans] == [f"{5:032x}"]
    found = TraceQueries(engine).list_traces(project, TraceFilter(user_id="ann"), limit=10).items
    assert sorted(t.trace_id for t in found) == [f"{n:032x}" for n in (1, 3, 4, 5)]
    with engine.connect() as conn:
        assert conn.execute(select(gaps_table.c.name)).first() is None
        assert conn.execute(select(void_span_ids.c.first_id)).first() is None  # both marks are past them


def test_unused_ids_are_recorded_with_their_write_and_pruned_when_old(pg_engine: Engine) -> None:
    engine = pg_engine
    project = ProjectRepository(engine).get_or_create(unique("void")).id
    write_spans(engine, project, _user_trace(1, "once"))
    write_spans(engine, project, _user_trace(1, "once"))  # every span stored already
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT max(id) FROM spans")).scalar_one()
        ranges = conn.execute(select(void_span_ids.c.first_id, void_span_ids.c.last_id)).all()
    assert [tuple(r) for r in ranges] == [(stored + 1, stored + 2)]  # the second write's two ids
    with engine.begin() as conn:
        void_ids.prune(conn, time.time_ns())  # the marks are behind them: kept
        assert conn.execute(select(void_span_ids.c.first_id)).first() is not None
        void_ids.prune(conn, time.time_ns() + index_gaps.GAP_RETIRE_NS + 1)
        assert conn.execute(select(void_span_ids.c.first_id)).first() is None
