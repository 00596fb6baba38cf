"""Spans keyed by their trace's row id (ADR 0032, revision 0024), on both databases: the
migration gives every stored span its trace row, retention never leaves spans without
one, a trace whose row was deleted takes new spans under a new row, and the reads that
find spans by trace id go through the trace row and the spans' key, not a walk of spans."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError

from tests.support.databases import fresh_database_url
from tests.support.gateway import wait_until
from tests.support.span_rows import insert_spans
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.evals.dataset_sources import items_from_traces
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.monitor.quality import QualityQueries
from watchkeep.security.retention import DAY_NS
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.migrate import downgrade, upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.retention_queries import RetentionQueries
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import spans, traces
from watchkeep.store.trace_queries import TraceFilter, TraceQueries

_SPAN = (
    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code, start_time_unix_nano, "
    "end_time_unix_nano, duration_ms, ingested_at_unix_nano) VALUES (1, :t, :s, 'call', 0, :status, :a, :b, 0, 0)"
)


def _batch(project_id: int, seed: int) -> WriteBatch:
    """Two traces of three spans each."""
    body, _ = build_request(6, rng=random.Random(seed))
    return prepare(project_id, body, Encoding.PROTOBUF, 1, None).batch


def _one_trace(project_id: int, seed: int) -> tuple[str, WriteBatch]:
    """One trace of three spans, and its id."""
    batch = _batch(project_id, seed)
    trace_id = batch.spans[0][1]
    mine = WriteBatch(
        spans=[r for r in batch.spans if r[1] == trace_id],
        payloads=[r for r in batch.payloads if r[1] == trace_id],
        traces={k: v for k, v in batch.traces.items() if k[1] == trace_id},
        resources=batch.resources,
    )
    return trace_id, mine


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Engine, int]]:
    engine = make_engine(database_url)
    project = ProjectRepository(engine).get_or_create(f"rows-{uuid.uuid4().hex[:10]}").id
    yield engine, project
    engine.dispose()


def _span_keys(engine: Engine) -> list[tuple[Any, ...]]:
    """(trace id, span id, the trace id of the row the span points at) of every span."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(spans.c.trace_id, spans.c.span_id, traces.c.trace_id)
            .join(traces, traces.c.id == spans.c.trace_row_id)
            .order_by(spans.c.trace_id, spans.c.span_id)
        )
        return [tuple(r) for r in rows]


def test_the_migration_gives_every_span_its_trace_row_and_downgrades(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(fresh_database_url(request, database_url, tmp_path))
    try:
        upgrade(engine, "0023")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO projects (id, name, created_at_unix_nano) VALUES (1, 'p', 0)")
            for trace_id in ("t0", "t1"):
                conn.execute(
                    text(
                        "INSERT INTO traces (project_id, trace_id, name, start_time_unix_nano, "
                        "end_time_unix_nano, has_error) VALUES (1, :t, 'root', 10, 20, false)"
                    ),
                    {"t": trace_id},
                )
            conn.execute(text("DELETE FROM traces WHERE trace_id = 't0'"))  # a gap in the row ids
            spans_at = [
                ("t1", "a", 0, 10, 20),
                ("t1", "b", 0, 11, 19),
                ("t2", "c", 2, 5, 7),
                ("t2", "d", 0, 6, 30),
            ]
            for t, s, status, a, b in spans_at:  # t2 has spans and no trace row (retention left them)
                conn.execute(text(_SPAN), {"t": t, "s": s, "status": status, "a": a, "b": b})
            old_id = None
            if is_sqlite(engine.url.drivername):
                old_id = conn.exec_driver_sql("SELECT rowid FROM traces WHERE trace_id = 't1'").scalar()
        upgrade(engine)
        assert _span_keys(engine) == [
            ("t1", "a", "t1"),
            ("t1", "b", "t1"),
            ("t2", "c", "t2"),
            ("t2", "d", "t2"),
        ]
        with engine.connect() as conn:
            made = conn.execute(select(traces).where(traces.c.trace_id == "t2")).one()
            kept = conn.execute(select(traces.c.id).where(traces.c.trace_id == "t1")).scalar()
        assert (made.start_time_unix_nano, made.end_time_unix_nano, bool(made.has_error)) == (5, 30, True)
        if old_id is not None:
            assert kept == old_id  # SQLite keeps each trace's rowid as its id
        detail = TraceQueries(engine).get_trace(1, "t2")
        assert detail is not None
        assert sorted(s["span_id"] for s in detail["spans"]) == ["c", "d"]

        downgrade(engine, "0023")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == 4
            assert conn.execute(text("SELECT count(*) FROM traces")).scalar() == 2
        with pytest.raises(IntegrityError), engine.begin() as conn:  # the old key is back
            conn.execute(text(_SPAN), {"t": "t1", "s": "a", "status": 0, "a": 1, "b": 2})
        upgrade(engine)
        assert len(_span_keys(engine)) == 4
    finally:
        engine.dispose()


def test_a_trace_row_outlives_its_spans_under_retention(store: tuple[Engine, int]) -> None:
    engine, project = store
    writer = SpanWriter(engine)
    try:
        trace_id, batch = _one_trace(project, 1)
        writer.write([batch])
        end = max(r[9] for r in batch.spans)
        retention = RetentionQueries(engine, batch=2, max_batches=1)
        assert retention.expire(project, "spans", end + 1) == 2  # the pass stops after one batch
        detail = TraceQueries(engine).get_trace(project, trace_id)
        assert detail is not None
        assert len(detail["spans"]) == 1  # the rest, still shown under the row
        assert retention.expire(project, "spans", end + 1) == 1 + 1  # the last span, then the row
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).where(traces.c.project_id == project)).scalar()
        assert left == 0
    finally:
        writer.close()


def test_a_trace_written_again_after_its_row_was_deleted_takes_a_new_row(store: tuple[Engine, int]) -> None:
    engine, project = store
    writer = SpanWriter(engine)
    queries = TraceQueries(engine)
    try:
        trace_id, first = _one_trace(project, 2)
        writer.write([first])
        with engine.connect() as conn:
            old_row = conn.execute(select(traces.c.id).where(traces.c.project_id == project)).scalar()
        with engine.begin() as conn:  # as erasure does for a trace: its spans, then its row
            conn.execute(spans.delete().where(spans.c.trace_row_id == old_row))
            conn.execute(traces.delete().where(traces.c.id == old_row))
        assert queries.get_trace(project, trace_id) is None
        assert writer.write([first]) == 3  # a replay after the deletion is stored again
        with engine.connect() as conn:
            new_row = conn.execute(select(traces.c.id).where(traces.c.project_id == project)).scalar()
        assert new_row is not None
        assert new_row > old_row
        detail = queries.get_trace(project, trace_id)
        assert detail is not None
        assert len(detail["spans"]) == 3
        assert writer.write([first]) == 0  # and is a replay again
        listed = queries.list_traces(project, TraceFilter())
        assert [(t.trace_id, t.span_count) for t in listed.items] == [(trace_id, 3)]
    finally:
        writer.close()


def _plans(engine: Engine, action: Callable[[], object]) -> list[str]:
    """SQLite's plan of each statement ``action`` runs that reads ``spans``."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        reads = statement.lstrip().upper().startswith(("SELECT", "WITH"))
        # a subject's spans by user id: no index has it, so the project's spans are read (known)
        if not many and reads and " spans" in statement and "spans.user_id = " not in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        return [
            " | ".join(str(r[-1]) for r in cursor.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            for sql, params in seen
        ]
    finally:
        raw.close()


def test_sqlite_reads_a_traces_spans_through_its_row(tmp_path: Path) -> None:
    """Every read that finds spans by trace id reaches them by the spans' key on the trace's
    row id: without the old (project, trace, span) index, any that did not would walk the
    project's spans (a regression only a store of millions would show as time)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade(engine)
    project = ProjectRepository(engine).get_or_create("plans").id
    writer = SpanWriter(engine)
    batches = [_batch(project, seed) for seed in range(3)]
    writer.write(batches)
    writer.write(batches[:1])  # a replay: the writer looks stored spans up
    writer.close()
    trace_ids = sorted({r[1] for b in batches for r in b.spans})
    queries = TraceQueries(engine)
    actions: list[Callable[[], object]] = [
        lambda: queries.get_trace(project, trace_ids[0]),
        lambda: queries.list_traces(project, TraceFilter()),
        lambda: queries.list_traces(project, TraceFilter(model="gpt-4o")),
        lambda: queries.list_spans(project, TraceFilter(trace_id=trace_ids[1])),
        lambda: QualityQueries(engine).report(project, "accuracy", 0, 1 << 62, model="gpt-4o"),
        lambda: items_from_traces(queries, project, TraceFilter()),
        lambda: list(RetentionQueries(engine).subject_rows(project, "nobody")),
    ]
    try:
        for number, action in enumerate(actions):
            for plan in _plans(engine, action):
                plan = f"action {number}: {plan}"
                assert "SCAN spans" not in plan, plan
                if "(project_id=?)" in plan and "ix_spans_project_id_start_time_unix_nano" in plan:
                    raise AssertionError(f"walks the project's spans: {plan}")
    finally:
        engine.dispose()


def test_postgres_retention_keeps_a_trace_a_concurrent_write_brings_back(store: tuple[Engine, int]) -> None:
    """A trace past the cutoff with no spans left is picked for deletion while a write adds a
    span to it (and moves its end): retention waits for the write's row lock, then must see
    the row as the write left it and keep it, or the new span has no trace to be read by."""
    engine, project = store
    if is_sqlite(engine.url.drivername):
        pytest.skip("SQLite serialises writers: retention cannot start between the two statements")
    now = time.time_ns()
    old = now - 10 * DAY_NS
    with engine.begin() as conn:
        row = conn.execute(
            traces.insert()
            .values(
                project_id=project,
                trace_id="ab" * 16,
                name="t",
                start_time_unix_nano=old,
                end_time_unix_nano=old,
                has_error=False,
            )
            .returning(traces.c.id)
        ).scalar_one()
    writer = engine.connect()
    write = writer.begin()
    writer.execute(traces.update().where(traces.c.id == row).values(end_time_unix_nano=now))  # as the upsert
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(RetentionQueries(engine).expire(project, "spans", now - DAY_NS))
    )
    worker.start()
    try:
        assert wait_until(lambda: _waiting_on_a_lock(engine), timeout=10)
        insert_spans(
            writer,
            [
                {
                    "project_id": project,
                    "trace_id": "ab" * 16,
                    "span_id": "cd" * 8,
                    "name": "late",
                    "kind": 1,
                    "status_code": 0,
                    "start_time_unix_nano": now,
                    "end_time_unix_nano": now,
                    "duration_ms": 0.0,
                    "ingested_at_unix_nano": now,
                }
            ],
        )
        write.commit()
    finally:
        writer.close()
        worker.join(30)
    assert done == [0]
    detail = TraceQueries(engine).get_trace(project, "ab" * 16)
    assert detail is not None
    assert [s["span_id"] for s in detail["spans"]] == ["cd" * 8]


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'DELETE FROM traces%' AND datname = current_database()"
                )
            ).scalar()
        )
