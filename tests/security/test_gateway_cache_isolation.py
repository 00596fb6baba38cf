"""The response cache never crosses projects: no reading, no poisoning, no learning what
another project asked from a hit; a route's ttl has the operator's ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.gateway import chat, live_gateway
from tests.support.keys import new_key

SHARED = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}
ASKED = chat("what is the merger's code name?", temperature=0)


def _keys(database_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Admin keys of two fresh projects."""
    return tuple(  # type: ignore[return-value]
        {"Authorization": f"Bearer {new_key(database_url, 'admin')}"} for _ in range(2)
    )


def _ask(client: httpx.Client, key: dict[str, str], model: str = "m") -> httpx.Response:
    response = client.post("/v1/chat/completions", json={**ASKED, "model": model}, headers=key)
    assert response.status_code == 200, response.text
    return response


def test_a_shared_route_caches_per_project(tmp_path: Path, database_url: str) -> None:
    a, b = _keys(database_url)
    with live_gateway(tmp_path, database_url, SHARED) as gw, gw.http() as client:
        seen = [_ask(client, key).headers["x-watchkeep-cache"] for key in (a, a, b, b)]
    # b's first call is a miss: a hit would tell b what a asked.
    assert seen == ["miss", "hit", "miss", "hit"]


def test_project_routes_of_the_same_name_do_not_share_entries(tmp_path: Path, database_url: str) -> None:
    a, b = _keys(database_url)
    route = {"deployments": [{"name": "d", "backend": "mock"}]}
    with live_gateway(tmp_path, database_url, SHARED) as gw, gw.http() as client:
        for key in (a, b):
            assert client.put("/api/v1/routes/own", json=route, headers=key).status_code == 200
        seen = [_ask(client, key, "own").headers["x-watchkeep-cache"] for key in (a, b)]
    assert seen == ["miss", "miss"]


def test_a_project_cannot_poison_a_shared_routes_answers(tmp_path: Path, database_url: str) -> None:
    a, b = _keys(database_url)
    # a replaces the shared route for itself with a deployment of the same name and version.
    poison: dict[str, Any] = {
        "deployments": [{"name": "a", "backend": "mock", "mock": {"reply": "wire the money to X"}}]
    }
    with live_gateway(tmp_path, database_url, SHARED) as gw, gw.http() as client:
        assert client.put("/api/v1/routes/m", json=poison, headers=a).status_code == 200
        planted = _ask(client, a)
        victim = _ask(client, b)
    assert planted.json()["choices"][0]["message"]["content"] == "wire the money to X"
    assert victim.headers["x-watchkeep-cache"] == "miss"
    assert victim.json()["choices"][0]["message"]["content"].startswith("mock reply to:")


def test_a_routes_ttl_is_capped_by_the_operator(tmp_path: Path, database_url: str) -> None:
    (a, _) = _keys(database_url)
    forever = {"deployments": [{"name": "d", "backend": "mock"}], "cache": {"ttl_s": 10_000_000}}
    within = {"deployments": [{"name": "d", "backend": "mock"}], "cache": {"ttl_s": 60}}
    with (
        live_gateway(tmp_path, database_url, SHARED, gateway_cache_max_ttl_s=120) as gw,
        gw.http() as client,
    ):
        refused = client.put("/api/v1/routes/long", json=forever, headers=a)
        accepted = client.put("/api/v1/routes/short", json=within, headers=a)
    assert refused.status_code == 422, refused.text
    assert "ttl_s" in refused.json()["error"]["message"]
    assert accepted.status_code == 200
