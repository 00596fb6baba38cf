"""Shared fixtures: real databases (SQLite and a throwaway PostgreSQL), apps and servers.

Every integration test that takes ``database_url`` runs once per database. Databases
are created once per session; each test gets its own project (and key), which is how
the product isolates tenants, so tests cannot see each other's data.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from watchkeep.api.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.postgres import PostgresUnavailable, TempPostgres
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade
from watchkeep.store.projects import ProjectRepository

DATABASES = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres | str]:
    """A PostgreSQL for the session: ``WATCHKEEP_TEST_POSTGRES_URL`` or a throwaway cluster."""
    url = os.environ.get("WATCHKEEP_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        pg = TempPostgres().start()
    except PostgresUnavailable as exc:  # pragma: no cover - make test installs it
        pytest.fail(f"PostgreSQL is required for the tests: {exc}")
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each kind, shared by the session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'watchkeep.db'}"
    else:
        pg = request.getfixturevalue("postgres")
        url = pg if isinstance(pg, str) else pg.create_database(f"t_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for an in-test server on ``database_url`` (decoding in-process)."""
    return Settings(
        home=tmp_path,
        database_url=database_url,
        ingest_decode_workers=0,
        log_format="text",
        key_cache_seconds=0,
    )


def new_key(database_url: str, role: str = "member", project: str | None = None) -> str:
    """A key for a fresh (or the named) project."""
    engine = make_engine(database_url)
    try:
        return ProjectRepository(engine).create_key(project or f"p-{uuid.uuid4().hex[:10]}", role)
    finally:
        engine.dispose()


@dataclass
class Api:
    """An app under test with a key of a fresh project."""

    app: FastAPI
    client: TestClient
    key: str
    database_url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def key_for(self, role: str = "member", project: str | None = None) -> str:
        return new_key(self.database_url, role, project)


@pytest.fixture
def api(settings: Settings, database_url: str) -> Iterator[Api]:
    """A started app (lifespan run) with a member key of a fresh project; the client is on
    loopback, as a Prometheus beside the server would be (``/metrics`` answers it)."""
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield Api(app, client, new_key(database_url), database_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A real uvicorn server on loopback, for clients that speak HTTP themselves."""

    url: str
    api_key: str
    database_url: str
    app: FastAPI

    @property
    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def trace(self, trace_id: str) -> dict[str, object]:
        with self.client as c:
            response = c.get(f"/api/v1/traces/{trace_id}")
            response.raise_for_status()
            return dict(response.json())

    def spans(self, trace_id: str) -> list[dict[str, object]]:
        """Every stored span of ``trace_id`` (newest first)."""
        with self.client as c:
            response = c.get("/api/v1/spans", params={"trace_id": trace_id, "limit": 1000})
            response.raise_for_status()
            return list(response.json()["items"])

    def wait_for_spans(self, count: int, timeout: float = 30.0, **filters: str) -> list[dict[str, object]]:
        """Poll the span list until ``count`` spans match (the SDK exports asynchronously)."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, object]] = []
        with self.client as c:
            while time.monotonic() < deadline:
                spans = c.get("/api/v1/spans", params={"limit": 1000, **filters}).json()["items"]
                if len(spans) >= count:
                    return spans
                time.sleep(0.1)
        return spans


def serve(app: FastAPI, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """Run ``app`` with uvicorn on a thread until ``server.should_exit``."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return server, thread


@pytest.fixture
def live_server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    """A running HTTP server with a member key of a fresh project."""
    app = create_app(settings)
    port = free_port()
    server, thread = serve(app, port)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", new_key(database_url), database_url, app)
    finally:
        server.should_exit = True
        thread.join(30)
