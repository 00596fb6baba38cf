"""Payloads keyed by their span's row id (ADR 0029), on both databases: replays add nothing,
payloads that come before their span wait and then join it, and migration 0022 keeps
every stored payload readable."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.databases import fresh_database_url
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.trace_queries import TraceQueries


def _batch(project_id: int, seed: int) -> WriteBatch:
    body, _ = build_request(6, rng=random.Random(seed))
    return prepare(project_id, body, Encoding.PROTOBUF, 1, None).batch


def _count(engine: Engine, sql: str, project_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(sql.format(p=int(project_id))).scalar_one())


def _payload_rows(engine: Engine, project_id: int) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                "SELECT s.trace_id, s.span_id, p.input, p.output FROM span_payloads p "
                f"JOIN spans s ON s.id = p.span_row_id WHERE s.project_id = {int(project_id)} "
                "ORDER BY s.trace_id, s.span_id"
            )
        ]


@pytest.fixture
def project(database_url: str) -> tuple[Engine, int]:
    engine = make_engine(database_url)
    return engine, ProjectRepository(engine).get_or_create(f"payloads-{uuid.uuid4().hex[:10]}").id


def test_a_replayed_export_adds_no_payload(project: tuple[Engine, int]) -> None:
    engine, pid = project
    writer = SpanWriter(engine)
    try:
        batch = _batch(pid, 1)
        assert batch.payloads
        writer.write([batch])
        stored = _payload_rows(engine, pid)
        assert writer.write([batch]) == 0  # the same export again
        assert _payload_rows(engine, pid) == stored
        assert len(stored) == len(batch.payloads)
        assert _count(engine, "SELECT count(*) FROM early_payloads WHERE project_id = {p}", pid) == 0
    finally:
        writer.close()
        engine.dispose()


def test_new_spans_beside_replays_each_take_their_own_payload(project: tuple[Engine, int]) -> None:
    """Replayed spans ahead of new ones in one insert leave row ids unused: every payload
    must still land on its own span's row, not a neighbour's."""
    engine, pid = project
    writer = SpanWriter(engine)
    try:
        first, second = _batch(pid, 11), _batch(pid, 12)
        writer.write([first])
        mixed = WriteBatch(
            spans=first.spans[:3] + second.spans + first.spans[3:],
            payloads=first.payloads + second.payloads,
            traces={**first.traces, **second.traces},
            resources={**first.resources, **second.resources},
        )
        assert writer.write([mixed]) == len(second.spans)
        sent = sorted((r[1], r[2], r[3], r[4]) for r in first.payloads + second.payloads)
        assert _payload_rows(engine, pid) == sent
    finally:
        writer.close()
        engine.dispose()


def test_payloads_sent_before_their_span_wait_then_join_it(project: tuple[Engine, int]) -> None:
    engine, pid = project
    writer = SpanWriter(engine)
    try:
        batch = _batch(pid, 2)
        early = [(*r[:3], '"asked first"', None, *r[5:]) for r in batch.payloads]
        writer.write([WriteBatch(payloads=early)])  # as GenAI log records before their spans
        assert _count(engine, "SELECT count(*) FROM early_payloads WHERE project_id = {p}", pid) == len(early)
        assert _payload_rows(engine, pid) == []
        writer.write([batch])
        assert _count(engine, "SELECT count(*) FROM early_payloads WHERE project_id = {p}", pid) == 0
        rows = _payload_rows(engine, pid)
        assert len(rows) == len(batch.payloads)
        assert all(r[2] == '"asked first"' for r in rows)  # the side that came first is kept
        outputs = {r[1:3]: r[4] for r in batch.payloads}
        assert all(r[3] == outputs[r[:2]] for r in rows)  # the other side is filled from the span
        trace_id = str(batch.spans[0][1])
        shown = TraceQueries(engine).get_trace(pid, trace_id)
        assert shown is not None
        assert {s["input"] for s in shown["spans"] if s["input"] is not None} == {"asked first"}
    finally:
        writer.close()
        engine.dispose()


def test_a_span_without_messages_takes_those_sent_before_it(project: tuple[Engine, int]) -> None:
    engine, pid = project
    writer = SpanWriter(engine)
    try:
        batch = _batch(pid, 3)
        writer.write([WriteBatch(payloads=batch.payloads)])
        writer.write([WriteBatch(spans=batch.spans, traces=batch.traces, resources=batch.resources)])
        assert _count(engine, "SELECT count(*) FROM early_payloads WHERE project_id = {p}", pid) == 0
        assert len(_payload_rows(engine, pid)) == len(batch.payloads)
    finally:
        writer.close()
        engine.dispose()


def test_migration_0022_keeps_every_payload_readable(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(fresh_database_url(request, database_url, tmp_path))
    try:
        upgrade(engine, "0021")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO projects (id, name, created_at_unix_nano) VALUES (1, 'p', 0)")
            for span_id in ("s1", "s2"):
                conn.exec_driver_sql(
                    "INSERT INTO spans (project_id, trace_id, span_id, name, kind, status_code, "
                    "start_time_unix_nano, end_time_unix_nano, duration_ms, service_name, "
                    f"ingested_at_unix_nano) VALUES (1, 't1', '{span_id}', 'call', 0, 0, 1, 2, 0.0, 'svc', 3)"
                )
            for span_id, text in (("s2", "two"), ("s1", "one"), ("s9", "no span yet")):
                conn.exec_driver_sql(
                    "INSERT INTO span_payloads (project_id, trace_id, span_id, input, output, "
                    f"created_at_unix_nano) VALUES (1, 't1', '{span_id}', '{text}', NULL, 5)"
                )
        upgrade(engine)
        assert _payload_rows(engine, 1) == [("t1", "s1", "one", None), ("t1", "s2", "two", None)]
        with engine.connect() as conn:
            waiting = conn.exec_driver_sql("SELECT trace_id, span_id, input FROM early_payloads").all()
        assert [tuple(r) for r in waiting] == [("t1", "s9", "no span yet")]
        shown = TraceQueries(engine).get_trace(1, "t1")
        assert shown is not None
        assert [s["input"] for s in shown["spans"]] == ["one", "two"]
    finally:
        engine.dispose()
