"""Gateway fixtures: a fast mock upstream process and a real redis-server, both on loopback."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from tests.support.gateway import mock_upstream_args, process
from tests.support.servers import free_port

from watchkeep.store.engine import make_engine
from watchkeep.store.migrate import upgrade


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    """Base URL of a mock OpenAI upstream (faults by path prefix, see watchkeep.devtools.mock_upstream)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(mock_upstream_args(port), ready_url=f"{url}/_stats"):
        yield url


def _answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server (no persistence) on a free loopback port."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with process([*args, "--dir", str(workdir)], ready=lambda: _answers_ping(port)):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database for tests whose subject is not the store."""
    url = f"sqlite:///{tmp_path_factory.mktemp('gw') / f'wk-{uuid.uuid4().hex[:6]}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url
