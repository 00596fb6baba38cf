"""Back-pressure and failures on the ingest path: 503s that lose nothing accepted."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from tests.support.keys import new_key
from tests.support.servers import free_port, serve
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.span_writer import SpanWriter

PB = {"Content-Type": "application/x-protobuf"}


class Server:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.app = create_app(settings)
        port = free_port()
        self.server, self.thread = serve(self.app, port)
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {new_key(database_url)}", **PB}

    @property
    def span_writer(self) -> SpanWriter:
        return self.app.state.services.writer._writer  # type: ignore[no-any-return]

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/traces", content=body, headers=self.headers, timeout=60)

    def count(self) -> int:
        headers = {"Authorization": self.headers["Authorization"]}
        r = httpx.get(f"{self.url}/api/v1/spans", params={"limit": 1000}, headers=headers)
        return len(r.json()["items"])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def small_queue(settings: Settings, database_url: str) -> Iterator[Server]:
    server = Server(settings.model_copy(update={"ingest_queue_max_spans": 5}), database_url)
    yield server
    server.stop()


def test_full_queue_answers_503_with_retry_after(
    small_queue: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    original = small_queue.span_writer.write_new

    def blocked_write(batches: Any) -> Any:
        release.wait(30)
        return original(batches)

    monkeypatch.setattr(small_queue.span_writer, "write_new", blocked_write)
    first, _ = build_request(5, rng=random.Random(1))
    results: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: results.append(small_queue.post(first)))
    worker.start()
    try:
        while small_queue.app.state.services.writer.queued_spans < 5:
            threading.Event().wait(0.01)
        second, _ = build_request(3, rng=random.Random(2))
        refused = small_queue.post(second)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        release.set()
        worker.join(30)
    assert results[0].status_code == 200
    assert small_queue.count() == 5  # the accepted batch, none of the refused one
    assert small_queue.post(second).status_code == 200  # a retry later succeeds
    assert small_queue.count() == 8


def test_database_failure_is_503_and_stores_nothing(
    small_queue: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_write(batches: Any) -> int:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(small_queue.span_writer, "write_new", failing_write)
    body, _ = build_request(4, rng=random.Random(3))
    response = small_queue.post(body)
    assert response.status_code == 503
    assert "retry-after" in response.headers
    monkeypatch.undo()
    assert small_queue.count() == 0
    assert small_queue.post(body).status_code == 200
    assert small_queue.count() == 4


def test_decode_workers_handle_large_and_malformed_exports(settings: Settings, database_url: str) -> None:
    server = Server(settings.model_copy(update={"ingest_decode_workers": 1}), database_url)
    try:
        body, _ = build_request(600, rng=random.Random(4))
        assert len(body) > 64 * 1024  # goes through the worker process
        assert server.post(body).status_code == 200
        assert server.count() == 600
        broken = server.post(b"\xff" * 100_000)
        assert broken.status_code == 400
        assert server.count() == 600
    finally:
        server.stop()


def test_a_broken_writer_connection_is_replaced(small_queue: Server) -> None:
    """The writer keeps one connection; when it breaks under a commit, the retry of that
    export opens a fresh one and the client never sees the failure."""
    first, _ = build_request(3, rng=random.Random(5))
    assert small_queue.post(first).status_code == 200
    writer = small_queue.span_writer
    held = writer._connection()
    held.connection.dbapi_connection.close()  # type: ignore[union-attr]  # dies under the writer
    second, _ = build_request(2, rng=random.Random(6))
    assert small_queue.post(second).status_code == 200
    assert writer._connection() is not held
    assert small_queue.count() == 5


def test_the_sqlite_writer_keeps_its_own_larger_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = Settings(
        home=tmp_path,
        database_url=url,
        ingest_decode_workers=0,
        worker_enabled=False,
        sqlite_writer_cache_mib=48,
    )
    server = Server(settings, url)
    try:
        body, _ = build_request(2, rng=random.Random(7))
        assert server.post(body).status_code == 200
        writer_cache = server.span_writer._connection().exec_driver_sql("PRAGMA cache_size").scalar()
        with server.app.state.services.engine.connect() as other:
            reader_cache = other.exec_driver_sql("PRAGMA cache_size").scalar()
        assert (writer_cache, reader_cache) == (-48 * 1024, -16 * 1024)
    finally:
        server.stop()


def test_the_search_indexer_reads_the_writers_busy_time(small_queue: Server) -> None:
    """The indexer yields to a saturated writer (``periodic.IngestYield``): it must be given
    this server's writer, whose busy seconds grow with each commit and stay put while idle."""
    services = small_queue.app.state.services
    writer, indexer = services.writer, services.search
    before = writer.busy_seconds
    body, _ = build_request(3, rng=random.Random(8))
    assert small_queue.post(body).status_code == 200
    deadline = time.monotonic() + 30  # counted once the commit's futures are answered
    while writer.busy_seconds == before:
        assert time.monotonic() < deadline, "the commit added no busy time"
        time.sleep(0.01)
    after = writer.busy_seconds
    assert after > before
    assert indexer._ingest_busy() == after == writer.busy_seconds  # idle: no growth
