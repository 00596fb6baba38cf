"""ACK after commit, proven the hard way: SIGKILL a loaded server and count what survived.

A real ``watchkeep server`` process takes OTLP exports from several threads; once a fair
number are acknowledged it is killed with SIGKILL mid-load, restarted on the same
database, and every span that was answered 200 must be there exactly once. Requests that
were cut off may or may not have landed, but each one is all or nothing (one transaction),
and the restarted server is ready and keeps ingesting.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.servers import free_port
from watchkeep.devtools.postgres import TempPostgres
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.store.engine import make_engine
from watchkeep.store.tables import projects, spans, traces

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "watchkeep.cli.main"]
PROTOBUF = {"Content-Type": "application/x-protobuf"}
ACKS_BEFORE_KILL = 30
THREADS = 4
SpanKey = tuple[str, str]


@dataclass
class Server:
    """One ``watchkeep server`` process in its own process group."""

    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "server", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its decode workers die with it on killpg
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited early:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in 60 s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (server and decode workers) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None


@dataclass
class Load:
    """Exports posted by several threads, and what the server answered."""

    url: str
    key: str
    acked: list[list[SpanKey]] = field(default_factory=list)
    unacked: list[list[SpanKey]] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    enough: threading.Event = field(default_factory=threading.Event)

    def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        headers = {**PROTOBUF, "Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                # mostly small exports (decoded inline), now and then one (~300 KB) for the decode workers
                n_spans = rng.choice([3, 6, 12, 30]) if rng.random() < 0.9 else 900
                body, ids = build_request(n_spans, rng=rng)
                try:
                    status = client.post("/v1/traces", content=body).status_code
                except httpx.TransportError:
                    status = 0
                with self.lock:
                    (self.acked if status == 200 else self.unacked).append(ids)
                    if len(self.acked) >= ACKS_BEFORE_KILL:
                        self.enough.set()
                    if status not in (0, 200, 503):
                        self.unexpected.append(status)
                if status == 0:
                    return  # the server is gone


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new, empty database of ``database_url``'s kind, owned by the server under test."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'crash.db'}"
    pg = request.getfixturevalue("postgres")
    return pg.create_database(f"crash_{uuid.uuid4().hex[:10]}") if isinstance(pg, TempPostgres) else pg


@pytest.fixture
def server(fresh_database_url: str, tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    """A server process (not started) and a member key of a fresh project on its database."""
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(tmp_path / "home"),
        "WATCHKEEP_DATABASE_URL": fresh_database_url,
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        "WATCHKEEP_INGEST_DECODE_WORKERS": "1",
    }
    project = f"crash-{uuid.uuid4().hex[:8]}"
    key = _cli(env, "keys", "create", "--project", project).strip().splitlines()[-1]
    srv = Server(env, free_port(), tmp_path / "server.log")
    try:
        yield srv, project, key
    finally:
        srv.kill()


def _stored(database_url: str, project: str) -> list[SpanKey]:
    """Every (trace_id, span_id) row of ``project`` in the spans table, duplicates kept."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            project_id = conn.execute(select(projects.c.id).where(projects.c.name == project)).scalar_one()
            rows = conn.execute(
                select(spans.c.trace_id, spans.c.span_id).where(spans.c.project_id == project_id)
            ).all()
            orphans = conn.execute(
                select(func.count())
                .select_from(spans)
                .outerjoin(
                    traces,
                    (traces.c.project_id == spans.c.project_id) & (traces.c.trace_id == spans.c.trace_id),
                )
                .where(spans.c.project_id == project_id, traces.c.trace_id.is_(None))
            ).scalar_one()
    finally:
        engine.dispose()
    assert orphans == 0, f"{orphans} spans have no trace row"
    return [(r.trace_id, r.span_id) for r in rows]


def test_acknowledged_spans_survive_sigkill(server: tuple[Server, str, str], fresh_database_url: str) -> None:
    srv, project, key = server
    srv.start()
    load = Load(srv.url, key)
    threads = [threading.Thread(target=load.worker, args=(seed,), daemon=True) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        assert load.enough.wait(120), f"only {len(load.acked)} exports acknowledged in 120 s"
        srv.kill()  # mid-load: the other threads have requests on the wire
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert load.unexpected == [], "statuses other than 200 and 503 (queue full) before the kill"

    srv.start()  # same database: recovery (WAL replay) happens here
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "schema": "ok", "ingest_writer": "ok"}

        stored = _stored(fresh_database_url, project)
        acked = {span for ids in load.acked for span in ids}
        assert len(stored) == len(set(stored)), "a span was stored twice"
        missing = acked - set(stored)
        assert not missing, f"{len(missing)} acknowledged spans lost, e.g. {sorted(missing)[:3]}"
        for ids in load.unacked:  # cut off: all of the export or none of it
            assert len(set(ids) & set(stored)) in (0, len(ids))
        assert set(stored) <= acked | {span for ids in load.unacked for span in ids}

        # the API sees them too (a sample of acknowledged traces, each in full)
        by_trace: dict[str, set[str]] = {}
        for trace_id, span_id in acked:
            by_trace.setdefault(trace_id, set()).add(span_id)
        for trace_id in random.Random(1).sample(sorted(by_trace), 15):
            items = client.get("/api/v1/spans", params={"trace_id": trace_id, "limit": 1000}).json()["items"]
            assert sorted(s["span_id"] for s in items) == sorted(by_trace[trace_id])

        # and it keeps ingesting after the crash
        body, ids = build_request(6)
        assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        assert set(ids) <= set(_stored(fresh_database_url, project))
