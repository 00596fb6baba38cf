"""Integration fixtures: the real server (``live_server``, SQLite and PostgreSQL) behind a
relay that can take it away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.sdk_live import Backend, Relay, from_live

import watchkeep as wk
from watchkeep.sdk.client import Client, install


@pytest.fixture
def backend(live_server: Any) -> Backend:
    """The real server (each database), with a fresh project's key."""
    return from_live(live_server)


@pytest.fixture
def relay(backend: Backend) -> Iterator[Relay]:
    host, port = backend.url.split("//")[1].split(":")
    relay = Relay((host, int(port)))
    yield relay
    relay.down()


@pytest.fixture
def traced(backend: Backend, relay: Relay, tmp_path: Path) -> Iterator[Client]:
    """A client exporting through the relay (up) to the backend."""
    relay.up()
    client = wk.init(
        endpoint=relay.url,
        api_key=backend.api_key,
        home=tmp_path / "wk",
        environment="integration",
        flush_interval=0.05,
    )
    yield client
    client.shutdown(5)
    install({"enabled": False})
