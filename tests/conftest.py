"""Shared fixtures: real databases (SQLite and a throwaway PostgreSQL), apps and servers.

Every integration test that takes ``database_url`` runs once per database chosen with
``--db`` (default both). Databases are created once per session; each test gets its own
project (and key), which is how the product isolates tenants, so tests cannot see each
other's data. Helpers that tests import live in ``tests/support``, not here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support import databases
from tests.support.apps import Api
from tests.support.keys import new_key
from tests.support.servers import LiveServer, free_port, serve
from watchkeep.app import create_app
from watchkeep.config import Settings
from watchkeep.devtools.postgres import PostgresUnavailable, TempPostgres
from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade

pytest_plugins = ["tests.support.fixtures_monitor"]

# `watchkeep server` serves OTLP/gRPC on 4317 by default; server processes that tests start
# (several at once under xdist) inherit this and serve HTTP only, unless a test sets a port.
os.environ.setdefault("WATCHKEEP_OTLP_GRPC_PORT", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    databases.add_option(parser)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that needs ``database_url`` (directly or through a fixture) per database."""
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "database_url", databases.params(metafunc.config), indirect=True, scope="session"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that take the ``postgres`` fixture itself are PostgreSQL tests too: marked, and
    skipped when ``--db sqlite`` rules PostgreSQL out."""
    skip = pytest.mark.skip(reason="--db sqlite: no PostgreSQL in this run")
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if "postgres" not in databases.chosen(config) and item.get_closest_marker("postgres"):
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each chosen kind (``request.param``), shared by the session."""
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


@pytest.fixture
def api(settings: Settings, database_url: str) -> Iterator[Api]:
    """A started app (lifespan run) with a member key of a fresh project; the client is on
    loopback, as a Prometheus beside the server would be (``/metrics`` answers it)."""
    app = create_app(settings)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        yield Api(app, client, new_key(database_url), database_url)


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
