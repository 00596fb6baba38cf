"""Routes edited through the API are stored: every gateway process serves them, restarts keep them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.gateway import chat, live_gateway
from tests.support.keys import new_key

MOCK = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}
REPLY = {"deployments": [{"name": "d", "backend": "mock", "mock": {"reply": "from the store"}}]}


def _project(gw: Any) -> str:
    return str(gw.app.state.services.keys.verify(gw.key).project_name)


def _until(probe: Any, timeout: float = 15.0) -> Any:
    """``probe()`` once it is truthy (another process picks edits up on its next poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the other gateway never saw the edit")


def _answer(client: httpx.Client, model: str) -> httpx.Response:
    return client.post("/v1/chat/completions", json={**chat(), "model": model})


def test_an_edit_reaches_every_process_and_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    fast = {"gateway_route_sync_seconds": 0.05}
    with (
        live_gateway(tmp_path / "a", database_url, MOCK, **fast) as a,
        live_gateway(tmp_path / "b", database_url, MOCK, **fast) as b,
    ):
        project = _project(a)
        admin = {"Authorization": f"Bearer {new_key(database_url, 'admin', project)}"}
        member = {"Authorization": f"Bearer {new_key(database_url, 'member', project)}"}
        with (
            httpx.Client(base_url=a.url, headers=member) as on_a,
            httpx.Client(base_url=b.url, headers=member) as on_b,
        ):
            assert _answer(on_b, "mine").status_code == 404
            assert on_a.put("/api/v1/routes/mine", json=REPLY, headers=admin).status_code == 200
            assert _answer(on_a, "mine").json()["choices"][0]["message"]["content"] == "from the store"
            served = _until(lambda: (r := _answer(on_b, "mine")).status_code == 200 and r)
            assert served.json()["choices"][0]["message"]["content"] == "from the store"
            assert on_b.get("/api/v1/routes/mine").json()["scope"] == "project"
            # A replacement made on b reaches a too.
            changed = {"deployments": [{"name": "d", "backend": "mock", "mock": {"reply": "changed"}}]}
            assert on_b.put("/api/v1/routes/mine", json=changed, headers=admin).status_code == 200
            _until(lambda: _answer(on_a, "mine").json()["choices"][0]["message"]["content"] == "changed")
        other = {"Authorization": f"Bearer {new_key(database_url)}"}
        with httpx.Client(base_url=b.url, headers=other) as stranger:
            assert _answer(stranger, "mine").status_code == 404  # still the project's own
    with (
        live_gateway(tmp_path / "c", database_url, MOCK) as c,
        httpx.Client(base_url=c.url, headers=member) as on_c,
    ):
        # A process started later serves the stored route from its first request.
        assert _answer(on_c, "mine").json()["choices"][0]["message"]["content"] == "changed"
        assert on_c.delete("/api/v1/routes/mine", headers=admin).status_code == 204
        assert _answer(on_c, "mine").status_code == 404
        assert on_c.delete("/api/v1/routes/mine", headers=admin).status_code == 404


def test_a_stored_route_the_file_stops_allowing_is_not_served(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_UPSTREAM_KEY", "sk-upstream")
    uses_secret = {
        "deployments": [
            {
                "name": "x",
                "backend": "openai_compatible",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key_env": "WK_UPSTREAM_KEY",
            }
        ]
    }
    allowing = {**MOCK, "secret_origins": {"WK_UPSTREAM_KEY": ["http://127.0.0.1:9"]}}
    loopback = {"egress_allow_networks": "127.0.0.0/8"}
    with live_gateway(tmp_path / "a", sqlite_url, allowing, **loopback) as a:
        project = _project(a)
        admin = {"Authorization": f"Bearer {new_key(sqlite_url, 'admin', project)}"}
        with httpx.Client(base_url=a.url, headers=admin) as client:
            assert client.put("/api/v1/routes/upstream", json=uses_secret).status_code == 200
            assert client.put("/api/v1/routes/plain", json=REPLY).status_code == 200
    with (
        live_gateway(tmp_path / "b", sqlite_url, MOCK, **loopback) as b,
        httpx.Client(base_url=b.url, headers=admin) as client,
    ):
        names = [r["name"] for r in client.get("/api/v1/routes").json()["items"]]
        assert names == ["m", "plain"]
        assert _answer(client, "upstream").status_code == 404
    # Same file, but the egress settings no longer let tenants reach loopback.
    with (
        live_gateway(tmp_path / "c", sqlite_url, allowing) as c,
        httpx.Client(base_url=c.url, headers=admin) as client,
    ):
        names = [r["name"] for r in client.get("/api/v1/routes").json()["items"]]
        assert names == ["m", "plain"]
