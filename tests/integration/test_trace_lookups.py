"""The traces of each user and session, indexed behind the commit (ADR 0034): the lists
find a trace before the pass has written its lookup rows and after, a later span that moves
a trace's start or names its user is looked up again, and no project sees another's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, inspect, select

from tests.support.databases import fresh_database_url
from tests.support.otlp_json import SEC, T0, attr, two_span_trace, write_spans
from tests.support.tenant import unique
from watchkeep.store import span_list
from watchkeep.store.engine import make_engine
from watchkeep.store.index_tables import search_index_state, trace_lookups
from watchkeep.store.migrate import alembic_config, upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.retention_queries import RetentionQueries
from watchkeep.store.tables import projects, traces
from watchkeep.store.trace_lookups import SESSION, USER, TraceLookupIndexer, read_lookup_mark
from watchkeep.store.trace_queries import TraceFilter, TraceQueries


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _who(user: str | None, session: str | None = None) -> list[dict[str, object]]:
    found = [] if user is None else [attr("watchkeep.user.id", user)]
    return found + ([] if session is None else [attr("watchkeep.session.id", session)])


def _pages(engine: Engine, project_id: int, f: TraceFilter) -> list[tuple[str, int]]:
    """Every (trace id, start) of the filtered trace list, newest first, two a page."""
    out: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = TraceQueries(engine).list_traces(project_id, f, limit=2, cursor=cursor)
        out += [(i.trace_id, i.start_time_unix_nano) for i in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _span_traces(engine: Engine, project_id: int, f: TraceFilter) -> set[str]:
    return {s["trace_id"] for s in TraceQueries(engine).list_spans(project_id, f, limit=100).items}


def _lookups(engine: Engine, project_id: int) -> list[tuple[Any, ...]]:
    c = trace_lookups.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.kind, c.value, c.start_time_unix_nano, c.trace_id).where(c.project_id == project_id)
        )
        return sorted(tuple(r) for r in rows)


def _projects(engine: Engine, n: int) -> list[int]:
    repo = ProjectRepository(engine)
    return [repo.get_or_create(unique("lookups")).id for _ in range(n)]


def test_the_lists_find_a_users_traces_before_and_after_the_pass(engine: Engine) -> None:
    mine, theirs = _projects(engine, 2)
    for n in range(1, 7):
        write_spans(engine, mine, two_span_trace(n, _who("ann" if n % 2 else "bob", f"s-{n % 3}")))
    # Another tenant's traces of a user and session of the same names, newer than all of mine.
    write_spans(engine, theirs, two_span_trace(7, _who("ann", "s-1")) + two_span_trace(8, _who("ann", "s-0")))
    ann = [(f"{n:032x}", T0 + n * SEC) for n in (5, 3, 1)]
    session = [(f"{n:032x}", T0 + n * SEC) for n in (4, 1)]
    for _ in ("before", "after"):
        assert _pages(engine, mine, TraceFilter(user_id="ann")) == ann
        assert _pages(engine, mine, TraceFilter(session_id="s-1")) == session
        assert _pages(engine, mine, TraceFilter(user_id="ann", session_id="s-1")) == [(f"{1:032x}", T0 + SEC)]
        assert _span_traces(engine, mine, TraceFilter(user_id="ann")) == {t for t, _ in ann}
        assert _pages(engine, theirs, TraceFilter(user_id="ann")) == [
            (f"{n:032x}", T0 + n * SEC) for n in (8, 7)
        ]
        TraceLookupIndexer(engine).catch_up()
    assert _lookups(engine, mine) == sorted(
        [(USER, "ann" if n % 2 else "bob", T0 + n * SEC, f"{n:032x}") for n in range(1, 7)]
        + [(SESSION, f"s-{n % 3}", T0 + n * SEC, f"{n:032x}") for n in range(1, 7)]
    )


def test_a_later_span_that_moves_the_start_or_names_the_user_is_looked_up_again(engine: Engine) -> None:
    (mine,) = _projects(engine, 1)
    write_spans(engine, mine, two_span_trace(5, _who(None)))  # no user yet
    write_spans(engine, mine, two_span_trace(3, _who("ann")))
    TraceLookupIndexer(engine).catch_up()
    assert _pages(engine, mine, TraceFilter(user_id="ann")) == [(f"{3:032x}", T0 + 3 * SEC)]
    # Trace 5's late span names its user and starts before every other span of the store;
    # trace 3's moves its start (its lookup row's start is stale until the pass).
    write_spans(engine, mine, [_late(5, T0, _who("ann", "s-9")), _late(3, T0 + SEC // 2, [])])
    moved = [(f"{3:032x}", T0 + SEC // 2), (f"{5:032x}", T0)]
    for _ in ("before", "after"):
        assert _pages(engine, mine, TraceFilter(user_id="ann")) == moved
        assert _pages(engine, mine, TraceFilter(user_id="ann", start_to_ns=T0 + SEC // 4)) == moved[1:]
        assert _pages(engine, mine, TraceFilter(session_id="s-9")) == moved[1:]
        assert _span_traces(engine, mine, TraceFilter(session_id="s-9")) == {f"{5:032x}"}
        TraceLookupIndexer(engine).catch_up()
    assert _lookups(engine, mine) == [
        (USER, "ann", T0, f"{5:032x}"),
        (USER, "ann", T0 + SEC // 2, f"{3:032x}"),
        (SESSION, "s-9", T0, f"{5:032x}"),
    ]


def test_the_span_list_bounds_a_users_traces_by_their_end_in_the_lookup_rows(engine: Engine) -> None:
    """``span_page`` reads only the traces that end at or after the start of the user's
    (page x step)-th newest trace, taking their end from the lookup rows: a late span that
    carries an old trace past that bound is listed first, before the pass and after it."""
    (mine,) = _projects(engine, 1)
    for n in range(1, 7):
        write_spans(engine, mine, two_span_trace(n, _who("ann")))
    TraceLookupIndexer(engine).catch_up()
    write_spans(engine, mine, [_late(1, T0 + 10 * SEC, [])])  # trace 1 now ends at T0 + 11 s
    newest = ["late", "chat"]  # then trace 6's child
    for _ in ("before", "after"):
        page = TraceQueries(engine).list_spans(mine, TraceFilter(user_id="ann"), limit=2).items
        assert [s["name"] for s in page] == newest
        assert page[0]["trace_id"] == f"{1:032x}"
        TraceLookupIndexer(engine).catch_up()
    c = trace_lookups.c
    with engine.connect() as conn:
        ends = conn.execute(
            select(c.trace_id, c.end_time_unix_nano).where(c.project_id == mine, c.kind == USER)
        ).all()
    assert dict(ends) == {
        f"{n:032x}": T0 + (11 if n == 1 else n) * SEC + (0 if n == 1 else SEC // 2) for n in range(1, 7)
    }


@pytest.mark.parametrize("dense", [3, 4])
def test_a_user_with_dense_traces_is_counted_from_the_lookup_rows(
    engine: Engine, dense: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The span list walks the project's spans once a user picks ``DENSE_TRACES`` traces."""
    (mine,) = _projects(engine, 1)
    for n in (1, 2, 3):
        write_spans(engine, mine, two_span_trace(n, _who("ann")))
    monkeypatch.setattr(span_list, "DENSE_TRACES", dense)
    for _ in ("before", "after"):
        with engine.connect() as conn:
            many = span_list._many_traces_picked(
                conn, mine, TraceFilter(user_id="ann"), read_lookup_mark(conn)
            )
        assert many is (dense == 3)
        TraceLookupIndexer(engine).catch_up()


def _late(n: int, start: int, attributes: list[dict[str, object]]) -> dict[str, object]:
    """A span of trace ``n`` exported after the others, starting at ``start``."""
    return {
        "traceId": f"{n:032x}",
        "spanId": "00000000000000ff",
        "name": "late",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + SEC),
        "attributes": attributes,
    }


def test_expired_erased_and_deleted_traces_leave_no_lookup_rows(engine: Engine) -> None:
    mine, doomed = _projects(engine, 2)
    for n in (1, 2, 3):
        write_spans(engine, mine, two_span_trace(n, _who("ann" if n < 3 else "bob", "s")))
    TraceLookupIndexer(engine).catch_up()
    retention = RetentionQueries(engine)
    retention.erase_subject(mine, "bob")
    assert {r[3] for r in _lookups(engine, mine)} == {f"{1:032x}", f"{2:032x}"}
    assert retention.expire(mine, "spans", T0 + 2 * SEC) > 0  # trace 1 ends before it
    assert _lookups(engine, mine) == [
        (USER, "ann", T0 + 2 * SEC, f"{2:032x}"),
        (SESSION, "s", T0 + 2 * SEC, f"{2:032x}"),
    ]
    assert _pages(engine, mine, TraceFilter(user_id="ann")) == [(f"{2:032x}", T0 + 2 * SEC)]
    # A project deleted between ingest and the pass gets no lookup rows.
    write_spans(engine, doomed, two_span_trace(4, _who("ann", "s")))
    with engine.begin() as conn:
        conn.execute(delete(projects).where(projects.c.id == doomed))
    TraceLookupIndexer(engine).catch_up()
    assert _lookups(engine, doomed) == []


def _index_names(engine: Engine, table: str) -> set[str]:
    return {str(i["name"]) for i in inspect(engine).get_indexes(table)}


def test_revisions_0028_and_0029_move_the_users_and_sessions_to_their_lookup_rows(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url(request, database_url, tmp_path)
    engine = make_engine(url)
    try:
        upgrade(engine, "0027")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO projects (id, name, created_at_unix_nano) VALUES (1, 'a', 0), (2, 'b', 0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO traces (project_id, trace_id, name, start_time_unix_nano, end_time_unix_nano, "
                "has_error, user_id, session_id) VALUES (1, 'ab', 'root', 5, 6, false, 'u-1', NULL), "
                "(1, 'cd', 'root', 7, 8, false, NULL, 's-1'), (2, 'ef', 'root', 9, 9, false, NULL, NULL)"
            )
            conn.exec_driver_sql(
                "INSERT INTO spans (project_id, trace_id, span_id, name, kind, start_time_unix_nano, "
                "end_time_unix_nano, duration_ms, status_code, ingested_at_unix_nano, trace_row_id) "
                "SELECT 1, 'ab', '01', 'root', 1, 5, 6, 0.0, 0, 1, id FROM traces WHERE trace_id = 'ab'"
            )
        upgrade(engine)
        assert _lookups(engine, 1) == [(USER, "u-1", 5, "ab"), (SESSION, "s-1", 7, "cd")]
        c = trace_lookups.c
        with engine.connect() as conn:
            ends = conn.execute(select(c.trace_id, c.end_time_unix_nano).order_by(c.trace_id)).all()
            assert [tuple(r) for r in ends] == [("ab", 6), ("cd", 8)]
            mark = select(search_index_state.c.position).where(search_index_state.c.name == "trace_lookups")
            newest_span = conn.exec_driver_sql("SELECT max(id) FROM spans").scalar_one()
            assert conn.execute(mark).scalar_one() == newest_span
            if not url.startswith("sqlite"):  # the end rides in the key's leaves, not the key
                pk = "SELECT indexdef FROM pg_indexes WHERE indexname = 'pk_trace_lookups'"
                assert (
                    conn.exec_driver_sql(pk)
                    .scalar_one()
                    .endswith(
                        "(project_id, kind, value, start_time_unix_nano, trace_id) INCLUDE (end_time_unix_nano)"
                    )
                )
        assert "ix_traces_project_id_user_id_start_time_unix_nano_trace_id" not in _index_names(
            engine, "traces"
        )
        command.downgrade(alembic_config(url), "0028")
        assert "end_time_unix_nano" not in {
            col["name"] for col in inspect(engine).get_columns("trace_lookups")
        }
        assert _lookups(engine, 1) == [(USER, "u-1", 5, "ab"), (SESSION, "s-1", 7, "cd")]
        command.downgrade(alembic_config(url), "0027")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(traces)).scalar_one() == 3
        names = _index_names(engine, "traces")
        assert "ix_traces_project_id_user_id_start_time_unix_nano_trace_id" in names
        assert "ix_traces_project_id_session_id_start_time_unix_nano_trace_id" in names
    finally:
        engine.dispose()


@pytest.fixture
def own_engine(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of its own: no other test's spans pass its mark meanwhile."""
    engine = make_engine(fresh_database_url(request, database_url, tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def test_a_pass_waits_for_a_batch_or_for_its_oldest_span_to_age(own_engine: Engine) -> None:
    engine = own_engine
    (mine,) = _projects(engine, 1)
    indexer = TraceLookupIndexer(engine)
    indexer.catch_up()
    assert not indexer.due(1, 0)  # nothing past the mark
    write_spans(engine, mine, two_span_trace(1, _who("ann")))
    assert indexer.due(2, 10**15)  # two spans past the mark
    assert not indexer.due(10**9, 10**15)  # too few, too young
    assert indexer.due(10**9, 0)  # old enough
    indexer.catch_up()
    assert not indexer.due(1, 0)
