"""PostgreSQL upkeep: fresh stores get statistics at once, then only as they double."""

from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.store import engine as engine_module
from watchkeep.store.engine import make_engine
from watchkeep.store.maintenance import StoreMaintenance, name_os_thread
from watchkeep.store.migrate import upgrade
from watchkeep.store.span_writer import SpanWriter

_INSERTED = "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'spans'"


def test_tables_are_analysed_when_they_double(postgres: TempPostgres | str) -> None:
    url = postgres if isinstance(postgres, str) else postgres.create_database(f"u_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    upgrade(engine)
    writer = SpanWriter(engine)
    upkeep = StoreMaintenance(engine)
    rng = random.Random(7)

    def add(spans: int) -> None:
        """Store ``spans`` new spans and wait until PostgreSQL's statistics count them."""
        with engine.connect() as conn:
            before = conn.execute(text(_INSERTED)).scalar_one()
        body, _ = build_request(spans, rng=rng)
        writer.write([prepare(1, body, Encoding.PROTOBUF, 1, None).batch])
        writer.close()
        engine.dispose()  # a backend that ends reports its counts at once, an idle one within 10 s
        deadline = time.monotonic() + 30  # backends report their counts within a second or so
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text(_INSERTED)).scalar_one() >= before + spans:
                    return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL never counted the new spans")

    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO projects (id, name, created_at_unix_nano) VALUES (1, 'p', 0)"))
            # autovacuum may analyse a small table between the steps and reset its counter; the
            # test is about our upkeep's own threshold, so it alone analyses here
            conn.execute(text("ALTER TABLE spans SET (autovacuum_enabled = false)"))
        add(1_500)
        assert "spans" in upkeep.analyze_changed()  # never analysed, over the 1,000-row floor
        add(600)
        assert "spans" not in upkeep.analyze_changed()  # 40 % more rows: statistics still fit
        add(1_000)
        done = upkeep.analyze_changed()
        assert "spans" in done  # doubled since the last analysis
        assert "span_payloads" not in done  # read by primary key only
    finally:
        writer.close()
        engine.dispose()


def test_sqlite_wal_file_shrinks_after_a_restarting_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "WAL_KEEP_BYTES", 256 * 1024)
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    writer = SpanWriter(engine)
    rng = random.Random(3)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO projects (id, name, created_at_unix_nano) VALUES (1, 'p', 0)"))
        body, _ = build_request(3_000, rng=rng)
        writer.write([prepare(1, body, Encoding.PROTOBUF, 1, None).batch])
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 1024 * 1024  # automatic checkpoints are off: the WAL grew
        assert StoreMaintenance(engine).checkpoint("RESTART") is not None
        body, _ = build_request(3, rng=rng)
        writer.write([prepare(1, body, Encoding.PROTOBUF, 1, None).batch])  # starts the WAL over
        assert wal.stat().st_size <= 256 * 1024
    finally:
        writer.close()
        engine.dispose()


def test_threads_are_named_for_the_operating_system() -> None:
    seen: list[str] = []

    def run() -> None:
        name_os_thread("wk-test-thread-long-name")
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if sys.platform.startswith("linux"):
        assert seen == ["wk-test-thread-"]  # the kernel keeps 15 bytes
