"""Deleted means gone: ids are never handed on, revocations take hold, stale spans are dropped.

Attacks: (1) on SQLite a deleted project's id went to the next project created, which then
received whatever was still addressed to the old id (queued spans, cached keys); (2) a
key revoked while the gateway had it cached kept working for up to twice the documented
cache time (the gateway's own cache was refilled from the verifier's), and a revocation
in the server's own process did not reach the gateway's cache at all.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select
from starlette.requests import Request
from typer.testing import CliRunner

from tests.support.servers import LiveServer
from watchkeep.cli.main import app as cli
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.gateway.errors import GatewayError
from watchkeep.gateway.web import GatewayAuth
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.ingest.service_types import Encoding
from watchkeep.ingest.telemetry import IngestMetrics
from watchkeep.monitor.repository import MonitorRepository
from watchkeep.monitor.spec import MonitorSpec
from watchkeep.security import keys as keys_module
from watchkeep.security.keys import KeyVerifier, key_prefix
from watchkeep.store.engine import make_engine
from watchkeep.store.project_deletion import delete_project
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.rows import WriteBatch
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import spans


def _name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def _batch(project_id: int, seed: int, count: int = 8) -> WriteBatch:
    body, _ = build_request(count, rng=random.Random(seed))
    return prepare(project_id, body, Encoding.PROTOBUF, 1, None).batch


def _span_count(engine: Engine, *project_ids: int) -> int:
    query = select(func.count()).select_from(spans).where(spans.c.project_id.in_(project_ids))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


# --- ids are never handed on ----------------------------------------------------------------


def test_a_deleted_projects_id_and_key_ids_go_to_no_one_else(engine: Engine) -> None:
    repo = ProjectRepository(engine)
    doomed = _name("doomed")
    doomed_key = repo.create_key(doomed, "member")  # the newest project and key: the largest ids
    old = repo.lookup_key(key_prefix(doomed_key))
    assert old is not None
    assert delete_project(engine, doomed) is not None
    heir_key = repo.create_key(_name("heir"), "member")
    new = repo.lookup_key(key_prefix(heir_key))
    assert new is not None
    assert new.project_id != old.project_id
    assert new.key_id != old.key_id


def test_a_deleted_monitors_id_goes_to_no_other_monitor(engine: Engine) -> None:
    """Alert history keeps the monitor id without a foreign key: a reused id would adopt it."""
    project = ProjectRepository(engine).get_or_create(_name("mon")).id
    monitors = MonitorRepository(engine)
    spec = {"kind": "metric", "metric": "requests", "condition": {"op": "<", "alert": 1}}
    first = monitors.upsert(project, MonitorSpec.model_validate({**spec, "name": "m"}))
    assert monitors.delete(project, first.id)
    second = monitors.upsert(project, MonitorSpec.model_validate({**spec, "name": "n"}))
    assert second.id != first.id


# --- spans queued for a deleted project -----------------------------------------------------


def test_spans_queued_for_a_deleted_project_are_discarded(engine: Engine) -> None:
    repo = ProjectRepository(engine)
    doomed = repo.get_or_create(_name("queued"))
    stale = _batch(doomed.id, seed=1)  # accepted for the project, not yet committed
    assert delete_project(engine, doomed.name) is not None
    heir = repo.get_or_create(_name("heir"))  # on SQLite it used to get the same id
    registry = CollectorRegistry()
    writer = GroupCommitWriter(
        SpanWriter(engine), IngestMetrics(registry), max_queued_spans=10_000, max_commit_spans=10_000
    )
    writer.start()
    try:
        stored = writer.submit(stale).result(timeout=60)
    finally:
        writer.stop()
    assert stored == []
    assert _span_count(engine, doomed.id, heir.id) == 0
    discarded = registry.get_sample_value("watchkeep_ingest_spans_total", {"outcome": "discarded"})
    assert discarded == len(stale.spans)


def test_a_group_keeps_the_live_projects_spans_and_drops_the_deleted_ones(engine: Engine) -> None:
    repo = ProjectRepository(engine)
    doomed, live = repo.get_or_create(_name("gone")), repo.get_or_create(_name("live"))
    stale, fresh = _batch(doomed.id, seed=2), _batch(live.id, seed=3)
    delete_project(engine, doomed.name)
    writer = SpanWriter(engine)
    try:
        dropped, kept = writer.write_new([stale, fresh])
    finally:
        writer.close()
    assert dropped == []
    assert len(kept) == len(fresh.spans)
    assert _span_count(engine, doomed.id) == 0
    assert _span_count(engine, live.id) == len(fresh.spans)


# --- revocation -----------------------------------------------------------------------------


class FakeClock:
    """``time`` for the key cache, with a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(keys_module, "time", fake)
    return fake


def _gateway_call(auth: GatewayAuth, key: str) -> int:
    """The status the gateway's authentication gives ``key`` (200: let through)."""
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    headers = {b"authorization": f"Bearer {key}".encode()}
    try:
        asyncio.run(auth.principal(Request(scope), headers))
    except GatewayError as exc:
        return exc.status
    return 200


def test_a_key_revoked_elsewhere_stops_within_the_cache_time(
    engine: Engine, clock: FakeClock, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = ProjectRepository(engine)
    key = repo.create_key(_name("cached"), "member")
    ttl = 30.0
    verifier = KeyVerifier(repo.lookup_key, ttl=ttl)
    auth = GatewayAuth(verifier)
    assert verifier.verify(key) is not None  # a REST call reads the key from the store
    clock.now += ttl - 1
    assert _gateway_call(auth, key) == 200  # the gateway takes the answer cached a moment ago
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    assert CliRunner().invoke(cli, ["keys", "revoke", key]).exit_code == 0  # another process
    clock.now += 2  # the store was read more than the cache time ago
    assert verifier.verify(key) is None
    assert _gateway_call(auth, key) == 401


def test_a_key_revoked_in_the_process_stops_at_once(engine: Engine, clock: FakeClock) -> None:
    repo = ProjectRepository(engine)
    key, other = repo.create_key(_name("evict"), "member"), repo.create_key(_name("kept"), "member")
    verifier = KeyVerifier(repo.lookup_key, ttl=3600)
    auth = GatewayAuth(verifier)
    assert _gateway_call(auth, key) == 200
    assert _gateway_call(auth, other) == 200
    assert repo.revoke_key(key_prefix(key))
    verifier.evict(key_prefix(key))
    assert verifier.verify(key) is None
    assert _gateway_call(auth, key) == 401
    assert _gateway_call(auth, other) == 200  # only that key's answer was dropped


def test_a_project_deleted_in_the_process_stops_at_once(engine: Engine, clock: FakeClock) -> None:
    repo = ProjectRepository(engine)
    name = _name("evict-project")
    key = repo.create_key(name, "member")
    verifier = KeyVerifier(repo.lookup_key, ttl=3600)
    auth = GatewayAuth(verifier)
    assert _gateway_call(auth, key) == 200
    deleted = delete_project(engine, name)
    assert deleted is not None
    verifier.evict_project(deleted.project_id)
    assert _gateway_call(auth, key) == 401


def test_forget_reaches_the_gateways_cache(engine: Engine, clock: FakeClock) -> None:
    repo = ProjectRepository(engine)
    key = repo.create_key(_name("forget"), "member")
    verifier = KeyVerifier(repo.lookup_key, ttl=3600)
    auth = GatewayAuth(verifier)
    assert _gateway_call(auth, key) == 200
    assert repo.revoke_key(key_prefix(key))
    verifier.forget()
    assert _gateway_call(auth, key) == 401


def test_with_no_key_cache_the_cli_revocation_holds_for_the_next_request(
    live_server: LiveServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test server runs with ``key_cache_seconds=0``: the next request after the CLI
    revoked the key is refused."""
    with live_server.client as c:
        assert c.get("/api/v1/spans").status_code == 200
        monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
        assert CliRunner().invoke(cli, ["keys", "revoke", live_server.api_key]).exit_code == 0
        assert c.get("/api/v1/spans").status_code == 401
