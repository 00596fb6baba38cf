"""The SDK's spool belongs to one destination.

Attack: app A (its server unreachable) spools spans under the user's home; app B, with
another key and endpoint, shares that home and replayed A's spans into B's project as
its own. Spooled data must reach only the endpoint and key it was meant for, and the
spool must be private to the user (directories 0700, files 0600) whatever the umask.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import watchkeep as wk
from tests.support.keys import new_key
from tests.support.sdk_live import Relay
from tests.support.servers import LiveServer, free_port
from watchkeep.sdk.client import Client, install
from watchkeep.sdk.config import load_config

SPANS = 40


def _spans_of(server: LiveServer, key: str, trace_id: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        response = c.get("/api/v1/spans", params={"trace_id": trace_id, "limit": 1000})
        response.raise_for_status()
        return list(response.json()["items"])


def _traced_job() -> str:
    @wk.observe(name="step")
    def step(i: int) -> int:
        return i

    @wk.observe(name="job")
    def job() -> str | None:
        for i in range(SPANS - 1):
            step(i)
        return wk.current_trace_id()

    trace_id = job()
    assert trace_id is not None
    return trace_id


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.shutdown(5)
    install({"enabled": False})


def _init(made: list[Client], endpoint: str, key: str, home: Path) -> Client:
    client = wk.init(endpoint=endpoint, api_key=key, home=home, flush_interval=0.05, export_timeout=2)
    made.append(client)
    return client


def test_another_app_does_not_replay_a_foreign_spool(
    live_server: LiveServer, database_url: str, tmp_path: Path, clients: list[Client]
) -> None:
    home = tmp_path / "shared-home"
    host, port = live_server.url.split("//")[1].split(":")
    relay = Relay((host, int(port)))  # app A's own endpoint, away for now
    key_a, key_b = new_key(database_url), new_key(database_url)
    try:
        app_a = _init(clients, relay.url, key_a, home)
        trace_id = _traced_job()
        assert wk.flush(5)
        assert app_a.stats().spooled == SPANS
        app_a.shutdown(5)

        app_b = _init(clients, live_server.url, key_b, home)  # same home, another key and server
        _traced_job()  # B works normally meanwhile
        assert wk.flush(20)
        app_b.shutdown(5)
        assert _spans_of(live_server, key_b, trace_id) == []  # none of A's spans in B's project

        relay.up()
        _init(clients, relay.url, key_a, home)  # A again, its server back
        assert wk.flush(20)
        deadline = time.monotonic() + 20
        while len(found := _spans_of(live_server, key_a, trace_id)) < SPANS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(found) == SPANS
    finally:
        relay.down()


def test_spool_directories_and_files_are_private(tmp_path: Path, clients: list[Client]) -> None:
    home = tmp_path / "home"
    root = home / "spool"
    root.mkdir(parents=True)
    root.chmod(0o755)  # as an older SDK left it
    endpoint, key = f"http://127.0.0.1:{free_port()}", "wk_some-key"  # nobody listens there
    old_umask = os.umask(0o002)  # permissive: group-writable, world-readable
    try:
        client = _init(clients, endpoint, key, home)
        _traced_job()
        assert wk.flush(5)
        assert client.stats().spooled == SPANS
    finally:
        os.umask(old_umask)
    spool_dir = load_config({"endpoint": endpoint, "api_key": key, "home": home}).spool_dir
    assert spool_dir.parent == root
    assert key not in str(spool_dir)  # never the key in clear
    files = [p for p in spool_dir.iterdir() if p.is_file()]
    assert files
    for path in (root, spool_dir, *files):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
