"""No gateway trace lost: spans the store cannot take wait in the disk spool and are replayed.

Each test sends real calls through a live gateway, keeps the trace id of every call
served, breaks the store while the calls go on, and then counts the stored spans of those
trace ids. The faults are real: on SQLite the writer's transactions become read-only
(``PRAGMA query_only``, as a read-only database file: chmod does not stop root), so every
commit and probe fails; on PostgreSQL a private cluster (the shared one serves other
tests) is stopped and started again, which ends the writer's connection. A full ingest
queue is made by a lock another transaction holds, on which the writer's commit waits.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, bindparam, event, text
from tests.support.gateway import LiveGateway, chat, live_gateway

from watchkeep.devtools.postgres import TempPostgres
from watchkeep.gateway.telemetry import GatewayMetrics
from watchkeep.gateway.trace_spool import SpoolReplayer, TraceSpool
from watchkeep.ingest.decoded import DecodedSpan
from watchkeep.ingest.group_commit import QueueFull
from watchkeep.security.crypto import Keyring
from watchkeep.security.crypto import new_key as new_encryption_key
from watchkeep.security.pii import CACHE_SECONDS, PolicyUnavailable
from watchkeep.store.engine import is_sqlite, make_engine
from watchkeep.store.migrate import upgrade

SPOOL_LOG = "watchkeep.gateway.trace_spool"


def _config(upstream: str) -> dict[str, Any]:
    deployment = {"name": "up", "backend": "openai_compatible", "base_url": f"{upstream}/v1"}
    return {"routes": [{"name": "m", "deployments": [deployment]}]}


class Store:
    """A migrated database whose writes the test cuts off (``down``) and gives back (``up``)."""

    def __init__(self, url: str, cluster: TempPostgres | None) -> None:
        self.url = url
        self._cluster = cluster
        self._read_only = False

    def attach(self, gw: LiveGateway) -> None:
        """SQLite: while down, every transaction of the gateway's writer is read-only."""
        if self._cluster is not None:
            return

        def on_begin(conn: Connection) -> None:
            if threading.current_thread().name == "watchkeep-ingest-writer":
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute(f"PRAGMA query_only={int(self._read_only)}")

        event.listen(gw.app.state.services.engine, "begin", on_begin)

    def down(self) -> None:
        if self._cluster is None:
            self._read_only = True
        else:
            self._cluster.pause()

    def up(self) -> None:
        if self._cluster is None:
            self._read_only = False
        else:
            self._cluster.resume()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[TempPostgres]:
    with TempPostgres() as pg:
        yield pg


@pytest.fixture
def store(request: pytest.FixtureRequest, database_url: str) -> Iterator[Store]:
    """A store of the kind of ``database_url`` that this test alone uses."""
    if is_sqlite(make_engine(database_url).url.drivername):
        cluster = None
        url = f"sqlite:///{request.getfixturevalue('tmp_path') / f'wk-{uuid.uuid4().hex[:6]}.db'}"
    else:
        cluster = request.getfixturevalue("private_postgres")
        url = cluster.create_database(f"d_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    result = Store(url, cluster)
    try:
        yield result
    finally:
        result.up()


class Traffic:
    """Calls sent one after another on a thread; the trace ids of those served (200)."""

    def __init__(self, gw: LiveGateway) -> None:
        self.served: list[str] = []
        self.failed = 0
        self._gw = gw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._gw.http() as client:
            while not self._stop.is_set():
                self.send(client)
                time.sleep(0.02)

    def send(self, client: httpx.Client) -> None:
        response = client.post("/v1/chat/completions", json=chat(f"q{len(self.served)}"))
        if response.status_code == 200:
            self.served.append(response.headers["x-watchkeep-trace-id"])
        else:
            self.failed += 1

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(30)


def stored_spans(url: str, trace_ids: list[str]) -> dict[str, int]:
    """Stored spans per trace id, for the ids given."""
    engine = make_engine(url)
    query = text("SELECT trace_id, count(*) FROM spans WHERE trace_id IN :ids GROUP BY trace_id").bindparams(
        bindparam("ids", expanding=True)
    )
    try:
        counts: dict[str, int] = {}
        with engine.connect() as conn:
            for at in range(0, len(trace_ids), 500):
                rows = conn.execute(query, {"ids": trace_ids[at : at + 500]}).all()
                counts.update({str(trace_id): int(count) for trace_id, count in rows})
        return counts
    finally:
        engine.dispose()


def wait_stored(url: str, trace_ids: list[str], timeout: float = 90.0) -> dict[str, int]:
    """Spans per trace id once every one of ``trace_ids`` has one (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = stored_spans(url, trace_ids)
        if len(counts) == len(set(trace_ids)) or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def metric(gw: LiveGateway, name: str) -> float:
    return gw.app.state.services.registry.get_sample_value(name) or 0.0


def served_through_outage(gw: LiveGateway, store: Store, seconds: float) -> Traffic:
    """Calls before, during and after ``seconds`` of the store refusing writes."""
    with Traffic(gw).running() as traffic:
        time.sleep(0.5)
        store.down()
        try:
            time.sleep(seconds)
        finally:
            store.up()
        time.sleep(0.5)
    return traffic


def test_every_call_served_through_a_database_outage_has_its_trace(
    tmp_path: Path, store: Store, upstream: str
) -> None:
    spool = tmp_path / "spool"
    with live_gateway(tmp_path, store.url, _config(upstream), gateway_spool_dir=spool) as gw:
        store.attach(gw)
        # Longer than the PII policy cache: the policy's own read fails too (on PostgreSQL).
        traffic = served_through_outage(gw, store, seconds=CACHE_SECONDS + 1.5)
        assert len(traffic.served) > 20
        counts = wait_stored(store.url, traffic.served)
        assert set(counts) == set(traffic.served), f"{len(traffic.served) - len(counts)} traces lost"
        assert set(counts.values()) == {1}  # replays stored nothing twice
        spooled = metric(gw, "watchkeep_gateway_traces_spooled_total")
        assert spooled > 0  # the outage was real: spans went through the spool
        deadline = time.monotonic() + 30
        while metric(gw, "watchkeep_gateway_traces_replayed_total") < spooled and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(gw, "watchkeep_gateway_traces_replayed_total") == spooled
        assert metric(gw, "watchkeep_gateway_traces_dropped_total") == 0
        assert metric(gw, "watchkeep_gateway_trace_spool_bytes") == 0
    assert not [p for p in spool.rglob("*") if p.is_file()]  # every file replayed and deleted


@contextmanager
def writer_blocked(url: str) -> Iterator[None]:
    """Another transaction holds the write lock: the writer's commit waits (it does not fail)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if is_sqlite(engine.url.drivername):
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE spans IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()


def test_spans_the_full_ingest_queue_refuses_are_spooled_then_stored(
    tmp_path: Path, database_url: str, upstream: str
) -> None:
    with (
        live_gateway(
            tmp_path,
            database_url,
            _config(upstream),
            gateway_spool_dir=tmp_path / "spool",
            ingest_queue_max_spans=1,
        ) as gw,
        gw.http() as client,
    ):
        traffic = Traffic(gw)
        traffic.send(client)
        gw.wait_span(traffic.served[0])
        with writer_blocked(database_url):
            for _ in range(
                6
            ):  # one gather each: the first batch waits on the lock, the rest find the queue full
                traffic.send(client)
                time.sleep(0.3)
            assert metric(gw, "watchkeep_gateway_traces_spooled_total") > 0
        counts = wait_stored(database_url, traffic.served)
        assert set(counts) == set(traffic.served)
        assert set(counts.values()) == {1}
        assert metric(gw, "watchkeep_gateway_traces_dropped_total") == 0


def test_spool_files_left_by_a_stopped_gateway_are_replayed_at_the_next_start(
    tmp_path: Path, store: Store, upstream: str
) -> None:
    spool_root = tmp_path / "spool"
    config = _config(upstream)
    with live_gateway(tmp_path, store.url, config, gateway_spool_dir=spool_root) as gw:
        store.attach(gw)
        with gw.http() as client:
            traffic = Traffic(gw)
            traffic.send(client)
            gw.wait_span(traffic.served[0])
            store.down()
            for _ in range(30):
                traffic.send(client)
        # the gateway stops while the store is down: its queue goes to the spool
    store.up()
    files = sorted(p for p in spool_root.rglob("*.spans"))
    assert files, "the stopped gateway left no spool files"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert all(p.parent.stat().st_mode & 0o777 == 0o700 for p in files)
    # a file claimed by a process that died, and a second copy of a file whose spans get
    # stored anyway (as after a commit that succeeded but reported a failure)
    finished = subprocess.Popen(["true"])
    finished.wait()
    copy = files[-1].with_name(f"{time.time_ns():020d}-{finished.pid}-{files[-1].name.split('-')[2]}")
    copy.write_bytes(files[-1].read_bytes())
    files[0].rename(files[0].with_name(f"{files[0].name}.{finished.pid}.claim"))
    with live_gateway(tmp_path, store.url, config, gateway_spool_dir=spool_root) as gw:
        counts = wait_stored(store.url, traffic.served)
        assert set(counts) == set(traffic.served)
        assert set(counts.values()) == {1}
        deadline = time.monotonic() + 30
        while [p for p in spool_root.rglob("*") if p.is_file()] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in spool_root.rglob("*") if p.is_file()]
        assert metric(gw, "watchkeep_gateway_traces_replayed_total") > len(traffic.served) - 1


def test_a_full_spool_drops_spans_counted_and_logged_once(
    tmp_path: Path, store: Store, upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = {"gateway_spool_dir": tmp_path / "spool", "gateway_spool_max_bytes": 3000}
    with live_gateway(tmp_path, store.url, _config(upstream), **overrides) as gw:
        store.attach(gw)
        with gw.http() as client, caplog.at_level("ERROR", logger=SPOOL_LOG):
            traffic = Traffic(gw)
            traffic.send(client)
            gw.wait_span(traffic.served[0])
            store.down()
            try:
                for _ in range(12):  # one gather (one spool file) each
                    traffic.send(client)
                    time.sleep(0.25)
            finally:
                store.up()
        spooled = metric(gw, "watchkeep_gateway_traces_spooled_total")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = stored_spans(store.url, traffic.served)
            dropped = metric(gw, "watchkeep_gateway_traces_dropped_total")
            if len(counts) + dropped == len(traffic.served):
                break
            time.sleep(0.25)
        assert spooled > 0  # the spool took what fitted under its cap
        assert dropped > 0  # and refused the rest
        assert len(counts) + dropped == len(traffic.served)  # every span stored or counted
        errors = [r for r in caplog.records if r.name == SPOOL_LOG and r.levelname == "ERROR"]
        assert len(errors) == 1, [r.getMessage() for r in errors]  # the rest counted, not logged
        assert errors[0].exc_info is not None


def _span(trace_id: str) -> DecodedSpan:
    return DecodedSpan(trace_id, "1" * 16, None, "chat m", 2, 1, 2, 1, None, {"a": [1]}, {}, "s")


def test_a_spool_file_is_claimed_by_one_process_only(tmp_path: Path) -> None:
    first, second = TraceSpool(tmp_path, 1 << 20), TraceSpool(tmp_path, 1 << 20)
    assert first.write(7, [_span("a" * 32), _span("b" * 32)])
    assert second.write(8, [_span("c" * 32)])
    claimed, unreadable = first.claim(max_spans=1)
    assert unreadable == 0
    assert [(c.project_id, [s.trace_id for s in c.spans]) for c in claimed] == [(7, ["a" * 32, "b" * 32])]
    assert claimed[0].spans[0] == _span("a" * 32)
    others, _ = second.claim(max_spans=100)
    assert [c.project_id for c in others] == [8]  # the claimed file is not offered again
    first.release(claimed[0])
    again, _ = second.claim(max_spans=100)
    assert [c.project_id for c in again] == [7]
    second.complete(again[0])
    assert first.pending_spans() == 0


def test_with_an_encryption_key_spooled_prompts_are_sealed_on_disk(tmp_path: Path) -> None:
    """The spool holds prompts while the store is away: with a key they are encrypted there
    too, replay opens them, and a process without the key sets the file aside."""
    keyring = Keyring.from_keys(new_encryption_key())
    span = DecodedSpan(
        "d" * 32, "1" * 16, None, "chat m", 2, 1, 2, 1, None, {"input": "secret-prompt-1"}, {}, "s"
    )
    sealed = TraceSpool(tmp_path, 1 << 20, sealer=keyring)
    assert sealed.write(7, [span])
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"secret-prompt-1" not in on_disk
    assert on_disk.startswith(b"wkenc:")
    claimed, unreadable = sealed.claim(max_spans=10)
    assert (unreadable, claimed[0].spans) == (0, [span])
    sealed.release(claimed[0])
    keyless, unreadable = TraceSpool(tmp_path, 1 << 20).claim(max_spans=10)
    assert (keyless, unreadable) == ([], 1)


def test_a_replay_the_store_cannot_take_yet_keeps_its_file_for_later(tmp_path: Path) -> None:
    """Another worker's writer may still look healthy while the store is away: its replay
    meets the unreadable PII policy (or a full queue) and must keep the file, not set it aside."""
    spool = TraceSpool(tmp_path, 1 << 20)
    assert spool.write(7, [_span("e" * 32)])
    refusals: list[BaseException] = [PolicyUnavailable("down"), QueueFull(retry_after=1.0)]
    stored: list[list[DecodedSpan]] = []

    def submit(project_id: int, spans: list[DecodedSpan]) -> Future[Any]:
        if refusals:
            raise refusals.pop(0)
        stored.append(spans)
        done: Future[Any] = Future()
        done.set_result([])
        return done

    registry = CollectorRegistry()
    replayer = SpoolReplayer(spool, submit, lambda: True, GatewayMetrics(registry))
    replayer._step()  # refused twice: the file stays, nothing is counted dropped
    replayer._step()
    assert stored == []
    assert spool.pending_spans() == 1
    assert not list(tmp_path.glob("*.bad"))
    replayer._step()
    assert stored == [[_span("e" * 32)]]
    assert spool.pending_spans() == 0
    assert not registry.get_sample_value("watchkeep_gateway_traces_dropped_total")
