"""Policies and bad input over HTTP: auth, validation, size cap, limits (local and Redis), cache, routes API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.support.gateway import chat, live_gateway
from tests.support.keys import new_key

MOCK = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}


def _mock_route(**extra: Any) -> dict[str, Any]:
    return {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}], **extra}


def test_bad_requests_get_openai_style_errors(tmp_path: Path, sqlite_url: str) -> None:
    with live_gateway(tmp_path, sqlite_url, MOCK, gateway_max_request_bytes=4096) as gw, gw.http() as client:
        cases = [
            (b"{not json", 400, "invalid_request"),
            (b"[]", 400, "invalid_request"),
            (b'{"model": "m", "messages": []}', 400, "invalid_request"),
            (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', 400, "invalid_request"),
            (b'{"model": "m", "messages": [{"role": "user"}], "temperature": 9}', 400, "invalid_request"),
            (
                b'{"model": "m", "messages": [{"role": "user"}], "api_base": "http://evil"}',
                400,
                "invalid_request",
            ),
            (b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}', 404, "model_not_found"),
            (b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}', 413, None),
        ]
        for body, status, code in cases:
            response = client.post("/v1/chat/completions", content=body)
            assert response.status_code == status, (body[:60], response.text)
            error = response.json()["error"]
            assert isinstance(error["message"], str)
            assert error["type"]
            if code:
                assert error["code"] == code
        # Without a Content-Length (chunked upload), the cap is enforced while reading.
        big = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}'
        chunked = client.post("/v1/chat/completions", content=iter([big[:3000], big[3000:]]))
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["error"]["code"] == "request_too_large"
        small = orjson.dumps(chat("hello"))
        pieces = client.post("/v1/chat/completions", content=iter([small[:10], small[10:]]))
        assert pieces.status_code == 200, pieces.text
        no_key = client.post("/v1/chat/completions", json=chat(), headers={"Authorization": ""})
        assert no_key.status_code == 401
        assert no_key.json()["error"]["code"] == "invalid_api_key"
        viewer = {"Authorization": f"Bearer {new_key(sqlite_url, 'viewer')}"}
        assert client.post("/v1/chat/completions", json=chat(), headers=viewer).status_code == 403
        assert client.post("/v1/embeddings", json={"model": "m", "input": []}).status_code == 400


def test_requests_per_minute_are_limited_per_key(tmp_path: Path, sqlite_url: str) -> None:
    config = _mock_route(limits={"requests_per_minute": 3})
    with live_gateway(tmp_path, sqlite_url, config) as gw, gw.http() as client:
        statuses = [client.post("/v1/chat/completions", json=chat(str(i))).status_code for i in range(4)]
        refused = client.post("/v1/chat/completions", json=chat())
        other_key = {"Authorization": f"Bearer {new_key(sqlite_url)}"}
        other = client.post("/v1/chat/completions", json=chat(), headers=other_key)
    assert statuses == [200, 200, 200, 429]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert other.status_code == 200


def test_tokens_per_minute_are_charged_after_the_reply(tmp_path: Path, sqlite_url: str) -> None:
    config = _mock_route(limits={"tokens_per_minute": 5})
    with live_gateway(tmp_path, sqlite_url, config) as gw, gw.http() as client:
        first = client.post("/v1/chat/completions", json=chat("one two three four five six"))
        assert first.status_code == 200
        for _ in range(100):  # charging happens just after the response: wait for it
            second = client.post("/v1/chat/completions", json=chat())
            if second.status_code == 429:
                break
    assert second.status_code == 429
    assert "tokens" in second.json()["error"]["message"]


def test_redis_shares_the_limit_between_replicas(tmp_path: Path, sqlite_url: str, redis_url: str) -> None:
    config = _mock_route(limits={"requests_per_minute": 4})
    key = new_key(sqlite_url)
    headers = {"Authorization": f"Bearer {key}"}
    with (
        live_gateway(tmp_path / "a", sqlite_url, config, redis_url=redis_url) as one,
        live_gateway(tmp_path / "b", sqlite_url, config, redis_url=redis_url) as two,
        one.http() as a,
        two.http() as b,
    ):
        statuses = [
            (a if i % 2 else b).post("/v1/chat/completions", json=chat(), headers=headers).status_code
            for i in range(6)
        ]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_deterministic_requests_are_cached_per_deployment_version(tmp_path: Path, sqlite_url: str) -> None:
    with live_gateway(tmp_path, sqlite_url, MOCK) as gw, gw.http() as client:
        body = chat("cache me", temperature=0)
        first = client.post("/v1/chat/completions", json=body)
        second = client.post("/v1/chat/completions", json={**body, "user": "someone-else"})
        sampled = [client.post("/v1/chat/completions", json=chat("hot", temperature=0.7)) for _ in range(2)]
        forced = [
            client.post(
                "/v1/chat/completions", json=chat("hot", temperature=0.7), headers={"x-watchkeep-cache": "on"}
            )
            for _ in range(2)
        ]
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
        span = gw.wait_span(second.headers["x-watchkeep-trace-id"])
        # A new version of the deployment must not serve the old version's answers.
        route = {"deployments": [{"name": "a", "backend": "mock", "version": "2", "mock": {"reply": "v2"}}]}
        assert (
            client.put(
                "/api/v1/routes/m",
                json=route,
                headers={"Authorization": f"Bearer {new_key(sqlite_url, 'admin', _project(gw))}"},
            ).status_code
            == 200
        )
        after = client.post("/v1/chat/completions", json=body)
    assert [r.headers["x-watchkeep-cache"] for r in (first, second)] == ["miss", "hit"]
    assert second.json()["choices"] == first.json()["choices"]
    assert span["attributes"]["watchkeep.gateway.cache_hit"] is True
    assert [r.headers["x-watchkeep-cache"] for r in sampled] == ["miss", "miss"]
    assert [r.headers["x-watchkeep-cache"] for r in forced] == ["miss", "hit"]
    assert streamed.headers["x-watchkeep-cache"] == "hit"
    assert "mock reply to: cache me" in streamed.text
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert after.headers["x-watchkeep-cache"] == "miss"
    assert after.json()["choices"][0]["message"]["content"] == "v2"


def _project(gw: Any) -> str:
    return str(gw.app.state.services.keys.verify(gw.key).project_name)


def test_routes_api_edits_the_projects_routes_only(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_ALLOWED", "sk-allowed")
    monkeypatch.setenv("WK_OTHER", "sk-other")
    config = _mock_route(secret_origins={"WK_ALLOWED": ["http://127.0.0.1:9"]})
    loopback = {"egress_allow_networks": "127.0.0.0/8"}
    with live_gateway(tmp_path, sqlite_url, config, **loopback) as gw, gw.http() as client:
        admin = {"Authorization": f"Bearer {new_key(sqlite_url, 'admin', _project(gw))}"}
        canary = {
            "deployments": [
                {"name": "stable", "backend": "mock", "weight": 0, "mock": {"reply": "stable"}},
                {"name": "canary", "backend": "mock", "weight": 1, "mock": {"reply": "canary"}},
            ],
            "shadow": {"name": "shadowed", "backend": "mock", "mock": {"reply": "shadow"}},
        }
        assert client.put("/api/v1/routes/mine", json=canary).status_code == 403  # a member may only read
        created = client.put("/api/v1/routes/mine", json=canary, headers=admin)
        assert created.status_code == 200, created.text
        assert created.json()["scope"] == "project"
        reply = client.post("/v1/chat/completions", json={**chat(), "model": "mine"})
        assert reply.json()["choices"][0]["message"]["content"] == "canary"
        names = [r["name"] for r in client.get("/api/v1/routes").json()["items"]]
        assert names == ["m", "mine"]
        stranger = {"Authorization": f"Bearer {new_key(sqlite_url)}"}
        assert (
            client.post(
                "/v1/chat/completions", json={**chat(), "model": "mine"}, headers=stranger
            ).status_code
            == 404
        )
        secret_route = {
            "deployments": [
                {
                    "name": "x",
                    "backend": "openai_compatible",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key_env": "WK_OTHER",
                }
            ]
        }
        refused = client.put("/api/v1/routes/leak", json=secret_route, headers=admin)
        assert refused.status_code == 422
        assert "WK_OTHER" in refused.text
        allowed = {"deployments": [{**secret_route["deployments"][0], "api_key_env": "WK_ALLOWED"}]}
        shown = client.put("/api/v1/routes/ok", json=allowed, headers=admin)
        assert shown.status_code == 200
        assert "sk-allowed" not in shown.text
        assert client.delete("/api/v1/routes/mine", headers=admin).status_code == 204
        assert client.delete("/api/v1/routes/m", headers=admin).status_code == 404  # shared: file only
        trace_id = reply.headers["x-watchkeep-trace-id"]
        primary = gw.wait_span(trace_id)
        spans = gw.wait_spans(trace_id, 2)
    assert primary["attributes"]["watchkeep.deployment"] == "canary"
    (shadow,) = [s for s in spans if s["name"] == "shadow mine"]
    assert shadow["parent_span_id"] == primary["span_id"]
    assert shadow["attributes"]["watchkeep.deployment"] == "shadowed"
    assert shadow["attributes"]["watchkeep.gateway.shadow_of"] == "canary"
