"""A store that cannot write, seen from outside: 503s that lose nothing, an unready
``/readyz`` naming the writer, and one traceback with a count instead of one per commit.

The fault is real, on the writer's own connections: SQLite with ``max_page_count`` held at
the file's size (``SQLITE_FULL``, "database or disk is full", as on a full disk) and
PostgreSQL in read-only transactions (as on a standby after a failover).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from tests.integration.test_ingest_faults import Server
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.logs import RepeatedErrorLog
from watchkeep.store.engine import is_sqlite

WRITER_LOG = "watchkeep.ingest.group_commit"


class StoreFault:
    """Makes the ingest writer's connections refuse new data while ``full`` is set."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.full = False
        self.sqlite = is_sqlite(engine.url.drivername)
        event.listen(engine, "checkout", self._apply)

    def _apply(self, dbapi_conn: Any, *_: Any) -> None:
        if threading.current_thread().name != "watchkeep-ingest-writer":
            return  # readers (key checks, queries) keep working, as on a full disk
        cursor = dbapi_conn.cursor()
        if self.sqlite:
            if self.full:
                (pages,) = cursor.execute("PRAGMA page_count").fetchone()
                cursor.execute(f"PRAGMA max_page_count = {pages}")
            else:
                cursor.execute("PRAGMA max_page_count = 1073741823")
        else:
            cursor.execute(f"SET default_transaction_read_only = {'on' if self.full else 'off'}")
        cursor.close()
        dbapi_conn.commit()

    def remove(self) -> None:
        event.remove(self.engine, "checkout", self._apply)


@pytest.fixture
def faulty(settings: Settings, database_url: str) -> Iterator[tuple[Server, StoreFault]]:
    server = Server(settings, database_url)
    fault = StoreFault(server.app.state.services.engine)
    try:
        yield server, fault
    finally:
        fault.full = False
        server.stop()
        fault.remove()


def fill(server: Server, fault: StoreFault) -> None:
    """The disk fills up: the writer's next connection gets the fault."""
    fault.full = True
    server.span_writer.close()  # the writer is idle; its next write checks out a fresh connection


def readyz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=30)


def expected_error(database_url: str) -> str:
    return "OperationalError" if database_url.startswith("sqlite") else "ReadOnlySqlTransaction"


def test_a_full_store_is_unready_logged_once_and_loses_nothing(
    faulty: tuple[Server, StoreFault], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, fault = faulty
    first, _ = build_request(3, rng=random.Random(11))
    assert server.post(first).status_code == 200
    assert readyz(server).status_code == 200

    fill(server, fault)
    bodies = [build_request(150, rng=random.Random(20 + i))[0] for i in range(5)]
    with caplog.at_level(logging.ERROR, logger=WRITER_LOG):
        for body in bodies:
            refused = server.post(body)
            assert refused.status_code == 503
            assert "retry-after" in refused.headers
        unready = readyz(server)
        assert unready.status_code == 503
        check = unready.json()["checks"]["ingest_writer"]
        assert check.startswith(f"failing: {expected_error(database_url)} since ")
        assert unready.json()["checks"]["database"] == "ok"  # it answers; it cannot write

        fault.full = False  # space freed
        for body in bodies:
            assert server.post(body).status_code == 200
    assert readyz(server).json() == {
        "status": "ok",
        "checks": {"database": "ok", "schema": "ok", "ingest_writer": "ok"},
    }
    assert server.count() == 3 + 5 * 150  # nothing accepted was lost, nothing refused kept

    errors = [r for r in caplog.records if r.name == WRITER_LOG and r.levelno >= logging.ERROR]
    # 5 exports, each failing as a group and then alone: 10 identical failures
    assert [r for r in errors if r.exc_info] == errors[:1]
    repeats = [r.getMessage() for r in errors[1:]]
    assert len(repeats) == 1
    assert "repeated 9 times in the last" in repeats[0]


def test_readiness_comes_back_without_traffic(faulty: tuple[Server, StoreFault], database_url: str) -> None:
    """An unready server gets no traffic from its orchestrator, so the idle writer probes."""
    server, fault = faulty
    writer: GroupCommitWriter = server.app.state.services.writer
    writer._probe_seconds = 0.05
    fill(server, fault)
    body, _ = build_request(50, rng=random.Random(31))
    assert server.post(body).status_code == 503

    def failed_writes() -> int:
        response = readyz(server)
        assert response.status_code == 503
        return int(response.json()["checks"]["ingest_writer"].rsplit("(", 1)[1].split()[0])

    deadline = time.monotonic() + 60
    while failed_writes() < 4:  # the export, then probes that failed against the full store
        assert time.monotonic() < deadline, "the idle writer never probed the store"
        time.sleep(0.05)

    fault.full = False
    while readyz(server).status_code != 200:
        assert time.monotonic() < deadline, "readiness never came back"
        time.sleep(0.05)
    assert server.count() == 0  # a probe stores nothing
    assert server.post(body).status_code == 200
    assert server.count() == 50


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(errors: RepeatedErrorLog, exc: Exception) -> None:
    try:
        raise exc
    except Exception as raised:
        errors.failed(raised, "commit failed")


def test_repeated_errors_are_counted_per_window_and_a_new_error_logs_anew(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("tests.repeated")
    errors = RepeatedErrorLog(logger, window=60, clock=clock)
    with caplog.at_level(logging.ERROR, logger="tests.repeated"):
        for _ in range(4):
            fail(errors, OSError("disk full"))
            clock.now += 10
        assert [bool(r.exc_info) for r in caplog.records] == [True]  # 3 counted, not yet 60 s
        for _ in range(3):  # the last one comes 60 s after the first: the count goes out
            fail(errors, OSError("disk full"))
            clock.now += 10
        fail(errors, OSError("disk full"))  # counted in the next window
        fail(errors, ValueError("other"))  # a different error: its own traceback
        fail(errors, ValueError("other"))
        errors.recovered()
        fail(errors, ValueError("other"))  # after recovery it is news again
    lines = [(bool(r.exc_info), r.getMessage()) for r in caplog.records]
    assert lines == [
        (True, "commit failed"),
        (False, "OSError: disk full repeated 6 times in the last 60 s"),
        (False, "OSError: disk full repeated 1 times in the last 10 s"),
        (True, "commit failed"),
        (False, "ValueError: other repeated 1 times in the last 0 s"),
        (True, "commit failed"),
    ]
