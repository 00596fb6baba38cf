"""Deleting a project removes its keys, settings and telemetry, and nothing of other projects."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from watchkeep.cli.main import app as cli
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.security.keys import key_prefix
from watchkeep.store.engine import make_engine
from watchkeep.store.index_tables import trace_lookups
from watchkeep.store.project_deletion import delete_project
from watchkeep.store.projects import ProjectRepository
from watchkeep.store.route_repository import RouteRepository
from watchkeep.store.score_repository import NewScore, ScoreRepository
from watchkeep.store.span_writer import SpanWriter
from watchkeep.store.tables import api_keys, resources, scores, span_payloads, spans, traces
from watchkeep.store.trace_lookups import TraceLookupIndexer

TELEMETRY = (spans, span_payloads, traces, resources, trace_lookups)


def _rows(engine: Engine, project_id: int) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for table in (*TELEMETRY, scores, api_keys):
            query = select(func.count()).select_from(table).where(table.c.project_id == project_id)
            out[table.name] = int(conn.execute(query).scalar_one())
    return out


def _fill(engine: Engine, project_id: int, seed: int) -> None:
    writer = SpanWriter(engine)
    for i in range(3):
        body, _ = build_request(12, rng=random.Random(seed + i), service=f"svc-{seed}-{i}")
        writer.write([prepare(project_id, body, Encoding.PROTOBUF, 1, None).batch])
    writer.close()
    TraceLookupIndexer(engine).catch_up()
    score = NewScore("0" * 32, None, "quality", "numeric", 1.0, None, None, "api", None, None)
    ScoreRepository(engine).add(project_id, score)
    RouteRepository(engine).put(project_id, "mine", {"deployments": [{"name": "d", "backend": "mock"}]})


def test_deleting_a_project_removes_all_it_owns_and_spares_the_others(database_url: str) -> None:
    engine = make_engine(database_url)
    repo = ProjectRepository(engine)
    doomed, kept = f"doomed-{uuid.uuid4().hex[:8]}", f"kept-{uuid.uuid4().hex[:8]}"
    doomed_key, kept_key = repo.create_key(doomed, "member"), repo.create_key(kept, "member")
    doomed_id, kept_id = repo.get_or_create(doomed).id, repo.get_or_create(kept).id
    try:
        _fill(engine, doomed_id, 1)
        _fill(engine, kept_id, 100)
        before = _rows(engine, doomed_id)
        assert (before["spans"], before["traces"], before["resources"]) == (36, 12, 3)
        kept_before = _rows(engine, kept_id)
        deleted = delete_project(engine, doomed, batch=5)  # several batches a table
        assert deleted is not None
        assert deleted.rows == {
            "spans": 36,
            "span_payloads": before["span_payloads"],
            "early_payloads": 0,  # no payload came before its span
            "span_metadata": 0,  # synthetic spans carry no SDK metadata (test_span_metadata covers it)
            "trace_lookups": 24,  # a user and a session a trace
            "traces": 12,
            "resources": 3,
            "eval_output_cache": 0,
        }
        assert all(n == 0 for n in _rows(engine, doomed_id).values())
        assert _rows(engine, kept_id) == kept_before
        assert [r.project_id for r in RouteRepository(engine).load()[1] if r.project_id == doomed_id] == []
        assert repo.lookup_key(key_prefix(doomed_key)) is None
        assert repo.lookup_key(key_prefix(kept_key)) is not None
        assert delete_project(engine, doomed) is None
    finally:
        engine.dispose()


def test_the_cli_asks_first_and_reports_what_it_deleted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    assert runner.invoke(cli, ["keys", "create", "--project", name]).exit_code == 0
    declined = runner.invoke(cli, ["projects", "delete", name], input="n\n")
    assert declined.exit_code != 0
    listed = runner.invoke(cli, ["keys", "list", "--project", name]).stdout
    assert name in listed  # still there
    done = runner.invoke(cli, ["projects", "delete", name, "--yes"])
    assert done.exit_code == 0, done.output
    assert f"deleted project {name!r}" in done.stdout
    assert name not in runner.invoke(cli, ["keys", "list", "--project", name]).stdout
    missing = runner.invoke(cli, ["projects", "delete", name, "--yes"])
    assert missing.exit_code == 1
