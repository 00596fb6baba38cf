"""Filtered trace pages read one index range in the list's order (ADR 0026), on both
databases: results and keyset paging stay right across ties in the start time, and on
SQLite the planner takes the filter's index rather than walking every trace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from tests.support.tenant import unique
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.tables import traces
from watchkeep.store.trace_lookups import lookup_page, relook
from watchkeep.store.trace_queries import TraceFilter, TraceQueries, encode_cursor, span_list_query


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Engine, int]]:
    """An engine and a fresh project holding 40 traces (``_fill``)."""
    engine = make_engine(database_url)
    yield engine, _fill(engine)
    engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    """``store`` on SQLite only: its planner's choice of index is the one at risk
    (PostgreSQL plans by statistics, which 40 rows do not represent)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(engine)
    yield engine, _fill(engine)
    engine.dispose()


def _fill(engine: Engine) -> int:
    """A fresh project holding 40 traces: two users, ties in start time, every fourth
    trace tagged; its id."""
    project = ProjectRepository(engine).get_or_create(unique("plans")).id
    rows: list[dict[str, Any]] = [
        {
            "project_id": project,
            "trace_id": f"{i:032x}",
            "start_time_unix_nano": 1_000 * (i // 3),  # three traces share each start
            "end_time_unix_nano": 1_000 * (i // 3) + 5,
            "has_error": False,
            "user_id": f"user-{i % 2}",
            "session_id": f"session-{i % 5}",
            "environment": "prod",
            "release": "1.0",
            "tags": ["vip"] if i % 4 == 0 else None,
        }
        for i in range(40)
    ]
    with engine.begin() as conn:
        conn.execute(insert(traces), rows)
        ids = [int(r[0]) for r in conn.execute(select(traces.c.id).where(traces.c.project_id == project))]
    relook(engine, ids)  # rows written without spans: no lookup pass would see them
    return project


def all_pages(queries: TraceQueries, project: int, f: TraceFilter) -> list[str]:
    """Every trace id of the filtered list, newest first, two a page."""
    out: list[str] = []
    cursor = None
    while True:
        page = queries.list_traces(project, f, limit=2, cursor=cursor)
        out += [i.trace_id for i in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def newest_first(ids: list[int]) -> list[str]:
    return [f"{i:032x}" for i in sorted(ids, key=lambda i: (i // 3, i), reverse=True)]


@pytest.mark.parametrize(
    ("f", "wanted"),
    [
        (TraceFilter(user_id="user-1"), lambda i: i % 2 == 1),
        (TraceFilter(session_id="session-3"), lambda i: i % 5 == 3),
        (TraceFilter(release="1.0", environment="prod"), lambda i: True),
        (TraceFilter(tags=("vip",)), lambda i: i % 4 == 0),
        (TraceFilter(tags=("vip",), user_id="user-0"), lambda i: i % 4 == 0),
        (TraceFilter(tags=("other",)), lambda i: False),
    ],
)
def test_filtered_pages_are_complete_and_ordered_across_ties(
    store: tuple[Engine, int], f: TraceFilter, wanted: Any
) -> None:
    engine, project = store
    assert all_pages(TraceQueries(engine), project, f) == newest_first([i for i in range(40) if wanted(i)])


def _plan(engine: Engine, query: Any) -> list[tuple[int, int, str]]:
    """SQLite's plan of ``query``: (node id, parent id, detail) rows."""
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return [(int(r[0]), int(r[1]), str(r[-1])) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


def test_sqlite_takes_the_filter_index_not_the_time_index(sqlite_store: tuple[Engine, int]) -> None:
    engine, project = sqlite_store
    queries = TraceQueries(engine)
    t = traces.c
    for f, index in (
        (TraceFilter(release="1.0"), "ix_traces_project_id_release_start_time_unix_nano_trace_id"),
        (TraceFilter(tags=("vip",)), "ix_traces_tagged"),
    ):
        query = (
            select(traces)
            .where(*queries.trace_conditions(project, f))
            .order_by(t.start_time_unix_nano.desc(), t.trace_id.desc())
            .limit(51)
        )
        plan = " ".join(detail for _, _, detail in _plan(engine, query))
        assert f"USING INDEX {index} " in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index gives the whole order: no sort


@pytest.mark.parametrize("f", [TraceFilter(user_id="user-1"), TraceFilter(session_id="s", status="ok")])
def test_sqlite_reads_a_users_traces_in_order_from_their_lookup_rows(
    sqlite_store: tuple[Engine, int], f: TraceFilter
) -> None:
    """A user's or session's page walks their lookup rows in list order, probing each trace
    row by its id, and sorts only what the two reads merged (ADR 0034)."""
    engine, project = sqlite_store
    conditions = TraceQueries(engine).trace_conditions(project, f, looked_up=True)
    plan = _plan(engine, lookup_page(project, f, conditions, (5_000, "0" * 32), 51))
    walk = [
        n for n in plan if n[2].startswith("SEARCH trace_lookups USING PRIMARY KEY (project_id=? AND kind=?")
    ]
    assert len(walk) == 1, plan
    siblings = [detail for _, parent, detail in plan if parent == walk[0][1]]
    assert "SEARCH traces USING INTEGER PRIMARY KEY (rowid=?)" in siblings, plan
    assert not any("TEMP B-TREE" in detail for detail in siblings), plan  # the walk is in order
    details = [detail for _, _, detail in plan]
    # The traces past the mark, by their ids: not a walk of the project's traces or spans.
    assert not [d for d in details if d.startswith(("SEARCH traces USING INDEX", "SCAN traces"))], plan
    assert "SEARCH spans USING INTEGER PRIMARY KEY (rowid>?)" in details, plan
    assert not [d for d in details if d.startswith(("SEARCH spans USING INDEX", "SCAN spans"))], plan


def test_sqlite_lists_a_users_spans_through_their_traces_row_ids(sqlite_store: tuple[Engine, int]) -> None:
    """The span list's traces of a user come from their lookup rows and the traces past the
    mark, each by its row id: through the project's time index SQLite read every trace of
    the project (164 ms at 2M spans, session 34)."""
    engine, project = sqlite_store
    details = [
        d for _, _, d in _plan(engine, span_list_query(project, TraceFilter(user_id="user-1"), 51, None))
    ]
    assert not [d for d in details if d.startswith(("SEARCH traces USING INDEX", "SCAN traces"))], details
    assert "SEARCH traces USING INTEGER PRIMARY KEY (rowid=?)" in details, details


def test_sqlite_lists_one_traces_spans_by_the_span_key(sqlite_store: tuple[Engine, int]) -> None:
    """The span list of one trace reads that trace's entries of the spans' unique key (by its
    trace's row id, ADR 0032); ordered
    by the bare start time, SQLite walked the project's whole start-time index instead (749 ms
    at 2M spans, benchmarks/queries.py)."""
    engine, project = sqlite_store
    f = TraceFilter(trace_id="0123456789abcdef0123456789abcdef")
    query = span_list_query(project, f, 51, encode_cursor(5_000, 7))
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "SEARCH spans USING INDEX sqlite_autoindex_spans_1 (trace_row_id=?)" in plan, plan


def test_sqlite_lists_spans_by_metadata_from_the_side_table(sqlite_store: tuple[Engine, int]) -> None:
    """The span list filtered by metadata reads span_metadata's (project, key, value, start)
    range newest first and finds each span by its key; it walked the project's spans before,
    probing each (1.6 s at 10M on PostgreSQL for a pair on 1 trace in 500)."""
    engine, project = sqlite_store
    f = TraceFilter(metadata=(("customer", "acme"), ("tier", "gold")), model="m")
    for cursor in (None, encode_cursor(5_000, 7)):
        query = span_list_query(project, f, 51, cursor)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert plan.startswith("SEARCH span_metadata_1 USING COVERING INDEX ix_span_metadata_lookup"), plan
        assert "SEARCH spans USING INDEX sqlite_autoindex_spans_1 (trace_row_id=? AND span_id=?)" in plan, (
            plan
        )
        assert "ix_spans_project_id_start_time_unix_nano" not in plan, plan
