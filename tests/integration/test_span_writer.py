"""The span writer tells each batch which of its spans were new, on both databases."""

from __future__ import annotations

import random
import uuid

from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter


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
