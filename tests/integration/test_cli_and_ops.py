"""The command line (keys, db, server, up) and the operational endpoints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from tests.support.apps import Api
from tests.support.servers import free_port
from watchkeep.cli.main import app as cli
from watchkeep.security.people import PeopleService
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import current_revision, head_revision
from watchkeep.store.people_repository import PeopleRepository
from watchkeep.store.projects import ProjectRepository

CLI = [sys.executable, "-m", "watchkeep.cli.main"]


def env_for(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "WATCHKEEP_HOME": str(home), "WATCHKEEP_LOG_LEVEL": "WARNING"}
    env.pop("WATCHKEEP_DATABASE_URL", None)
    if database_url:
        env["WATCHKEEP_DATABASE_URL"] = database_url
    return env


def test_keys_create_prints_the_key_alone_on_the_last_line(database_url: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "keys", "create", "--project", "cli-test", "--role", "viewer"],
        env=env_for(tmp_path, database_url),
        capture_output=True,
        text=True,
        check=True,
    )
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("wk_")
    assert " " not in key
    engine = make_engine(database_url)
    stored = ProjectRepository(engine).lookup_key(key[:15])
    engine.dispose()
    assert stored is not None
    assert (stored.project_name, stored.role) == ("cli-test", "viewer")


def test_keys_list_and_revoke(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEP_DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--project", "listing"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    listed = runner.invoke(cli, ["keys", "list", "--project", "listing"])
    assert key[:15] in listed.stdout
    assert key not in listed.stdout  # never the secret
    assert "active" in listed.stdout
    assert runner.invoke(cli, ["keys", "revoke", key]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["keys", "list", "--project", "listing"]).stdout
    assert runner.invoke(cli, ["keys", "revoke", key]).exit_code == 1
    bad_role = runner.invoke(cli, ["keys", "create", "--project", "x", "--role", "god"])
    assert bad_role.exit_code != 0


def test_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEP_HOME", str(tmp_path))
    monkeypatch.delenv("WATCHKEEP_DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'watchkeep.db'}")
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "api_keys", "spans", "span_payloads", "traces", "scores"} <= tables
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert "head: " + str(head_revision()) in runner.invoke(cli, ["db", "current"]).stdout


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server not ready")


def test_server_takes_flags_and_env_and_upgrades_on_start(tmp_path: Path) -> None:
    port = free_port()
    env = {**env_for(tmp_path), "WATCHKEEP_PORT": str(port)}  # the env var sets the port
    proc = subprocess.Popen([*CLI, "server", "--host", "127.0.0.1"], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert (tmp_path / "watchkeep.db").exists()
    finally:
        proc.terminate()
        assert proc.wait(30) in (0, -15)  # uvicorn re-raises SIGTERM after a graceful stop
    wal = tmp_path / "watchkeep.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # the lifespan's final checkpoint ran


def test_up_sends_example_traces(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [*CLI, "up", "--port", str(port), "--exit-after-demo"],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "demo key" in done.stdout
    key = (tmp_path / "demo.key").read_text().strip()
    engine = make_engine(f"sqlite:///{tmp_path / 'watchkeep.db'}")
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM traces").scalar()
    engine.dispose()
    assert n is not None
    assert n > 10
    assert key.startswith("wk_")
    login = re.search(r"log in as (\S+) with password (\S+)", done.stdout)
    assert login is not None, done.stdout
    people = PeopleService(PeopleRepository(engine))
    token, session = people.login(login.group(1), login.group(2), user_agent=None, address=None)
    assert token
    assert [(p.project_name, p.role) for p in people.projects_for(session.user.id)] == [("demo", "owner")]
    engine.dispose()


def test_probes_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ok"
    assert ready["checks"] == {"database": "ok", "schema": "ok", "ingest_writer": "ok"}
    api.client.post("/v1/traces", content=b"{}", headers={**api.auth, "Content-Type": "application/json"})
    text = api.client.get("/metrics").text
    for name in (
        'watchkeep_ingest_requests_total{encoding="json",outcome="200"}',
        "watchkeep_ingest_queue_spans",
        "watchkeep_ingest_commit_seconds_bucket",
        "watchkeep_http_requests_total",
        "watchkeep_http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
    ):
        assert name in text, name


def test_openapi_documents_the_api(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert {
        "/v1/traces",
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
        "/api/v1/spans",
        "/api/v1/scores",
    } <= set(schema["paths"])
    assert "application/x-protobuf" in schema["paths"]["/v1/traces"]["post"]["requestBody"]["content"]
