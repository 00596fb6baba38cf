"""The span writer tells each batch which of its spans were new, and stores any text as
sent, on both databases."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import Engine, func, select

from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.normalise import to_json
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import SPAN_COLUMNS, WriteBatch
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import span_payloads, spans


def _batch(project_id: int, seed: int, spans: int = 6) -> WriteBatch:
    body, _ = build_request(spans, rng=random.Random(seed))
    return prepare(project_id, body, Encoding.PROTOBUF, 1, None).batch


def _keys(rows: list[tuple[object, ...]]) -> set[tuple[object, ...]]:
    return {r[:3] for r in rows}


def test_new_spans_are_reported_per_batch_and_replays_are_not(database_url: str) -> None:
    engine = make_engine(database_url)
    writer = SpanWriter(engine)
    # The session's store is shared: a project of its own (spans of unknown projects are dropped).
    project = ProjectRepository(engine).get_or_create(f"writer-{uuid.uuid4().hex[:10]}").id
    try:
        first, second = _batch(project, 1), _batch(project, 2)
        assert [len(r) for r in writer.write_new([first])] == [6]
        # A replay of ``first`` next to new spans: only the new ones are reported.
        replayed, fresh = writer.write_new([first, second])
        assert replayed == []
        assert _keys(fresh) == _keys(second.spans)
        # The same new spans twice in one group: the first batch that has them gets them.
        third = _batch(project, 3)
        mixed = WriteBatch(spans=third.spans + first.spans, payloads=third.payloads, traces=third.traces)
        again, alone = writer.write_new([third, mixed])
        assert _keys(again) == _keys(third.spans)
        assert alone == []
        assert writer.write([first, second, third]) == 0
    finally:
        writer.close()
        engine.dispose()


TRICKY = 'tab\tnewline\nreturn\rbackslash\\ \\N null-marker, quote" é 😀'


def test_text_and_json_round_trip_whatever_their_characters(database_url: str) -> None:
    """PostgreSQL's writer sends rows in COPY's binary format and JSON as jsonb's binary
    form; text COPY would need every tab, newline and backslash escaped."""
    engine = make_engine(database_url)
    writer = SpanWriter(engine)
    project = ProjectRepository(engine).get_or_create(f"writer-{uuid.uuid4().hex[:10]}").id
    try:
        batch = _batch(project, 7, spans=2)
        span = dict(zip(SPAN_COLUMNS, batch.spans[0], strict=True))
        span["status_message"] = TRICKY
        span["attributes"] = to_json({"k": TRICKY, "n": [1, 2.5, None, True]})
        span["events"] = to_json([{"name": TRICKY}])
        payload = (project, span["trace_id"], span["span_id"], TRICKY, None, 1)
        writer.write(
            [
                WriteBatch(
                    spans=[tuple(span.values()), *batch.spans[1:]], payloads=[payload], traces=batch.traces
                )
            ]
        )
        with engine.connect() as conn:
            row = conn.execute(
                select(spans.c.status_message, spans.c.attributes, spans.c.events, span_payloads.c.input)
                .join(span_payloads, span_payloads.c.span_row_id == spans.c.id)
                .where(spans.c.project_id == project, spans.c.span_id == span["span_id"])
            ).one()
        assert tuple(row) == (TRICKY, {"k": TRICKY, "n": [1, 2.5, None, True]}, [{"name": TRICKY}], TRICKY)
    finally:
        writer.close()
        engine.dispose()


def _stored(engine: Engine, project: int) -> tuple[int, int]:
    """(spans, payload rows) stored for ``project``."""
    with engine.connect() as conn:
        n_spans = conn.execute(select(func.count()).where(spans.c.project_id == project)).scalar_one()
        n_payloads = conn.execute(
            select(func.count()).where(span_payloads.c.project_id == project)
        ).scalar_one()
    return int(n_spans), int(n_payloads)


def test_new_traces_duplicates_and_late_spans_of_a_stored_trace_in_one_group(database_url: str) -> None:
    """PostgreSQL copies a group's spans and payloads without a savepoint only when every
    trace in it is new and no span is there twice: each other mix must still store every
    span once, with its payload."""
    engine = make_engine(database_url)
    writer = SpanWriter(engine)
    project = ProjectRepository(engine).get_or_create(f"writer-{uuid.uuid4().hex[:10]}").id
    try:
        first = _batch(project, 11)  # two traces of three spans, one LLM call with messages each
        early = WriteBatch(spans=first.spans[:2], traces=first.traces)
        late = WriteBatch(spans=first.spans[2:], payloads=first.payloads, traces=first.traces)
        assert [len(r) for r in writer.write_new([early])] == [2]
        # A new trace twice beside the late spans of a stored trace.
        fresh = _batch(project, 12, spans=3)
        assert [len(r) for r in writer.write_new([fresh, fresh, late])] == [3, 0, 4]
        assert _stored(engine, project) == (9, 3)
        # Only new traces, each twice.
        newer = _batch(project, 13, spans=3)
        assert [len(r) for r in writer.write_new([newer, newer])] == [3, 0]
        assert _stored(engine, project) == (12, 4)
        # Everything again: nothing new, nothing lost.
        assert writer.write([early, late, fresh, newer]) == 0
        assert _stored(engine, project) == (12, 4)
    finally:
        writer.close()
        engine.dispose()
