"""The writer seals what arrives unsealed and binds what a decode worker sealed as it is."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import select, update

from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.security.crypto import Keyring, new_key
from watchkeep.store.engine import make_engine
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.sealing import row_aad
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import span_payloads


def test_presealed_and_unsealed_batches_are_both_stored_sealed_once(database_url: str) -> None:
    engine = make_engine(database_url)
    ring = Keyring.from_keys(new_key())
    writer = SpanWriter(engine, sealer=ring)
    project = ProjectRepository(engine).get_or_create(f"sealing-{uuid.uuid4().hex[:10]}").id
    try:
        bodies = [build_request(4, rng=random.Random(seed))[0] for seed in (11, 12)]
        worker = prepare(project, bodies[0], Encoding.PROTOBUF, 1, None, sealer=ring).batch  # a worker's
        gateway = prepare(project, bodies[1], Encoding.PROTOBUF, 1, None).batch  # e.g. gateway traces
        plain = {
            r[:3]: r[3]
            for b in (prepare(project, body, Encoding.PROTOBUF, 1, None).batch for body in bodies)
            for r in b.payloads
        }
        assert worker.sealed
        assert not gateway.sealed
        assert writer.write([worker, gateway]) == 8
        with engine.connect() as conn:
            stored = conn.execute(
                select(
                    span_payloads.c.project_id,
                    span_payloads.c.trace_id,
                    span_payloads.c.span_id,
                    span_payloads.c.input,
                ).where(span_payloads.c.project_id == project)
            ).all()
        assert {tuple(r[:3]) for r in stored} == set(plain)
        aad = row_aad("span_payloads", "input", project)
        for r in stored:
            assert r.input.startswith("wkenc:v2:")
            assert ring.open(r.input, aad) == plain[tuple(r[:3])]  # sealed exactly once
    finally:
        writer.close()
        with (
            engine.begin() as conn
        ):  # sealed under this test's own key: rotation elsewhere must not meet them
            conn.execute(
                update(span_payloads)
                .where(span_payloads.c.project_id == project)
                .values(input=None, output=None)
            )
        engine.dispose()
