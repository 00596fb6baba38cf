"""The gateway's fast path answers with the security headers, CORS closed or open.

With CORS off the fast path stands in front of the security-headers layer and adds the
headers itself (decision 0027, session 26); every kind of answer must still carry each
of them exactly once, as the REST API's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.gateway import chat, live_gateway

from watchkeep.api.security_headers import API_CSP, BASELINE


def _route(base_url: str) -> dict[str, Any]:
    deployment = {"name": "up", "backend": "openai_compatible", "base_url": base_url}
    return {"routes": [{"name": "m", "deployments": [deployment], "cache": {"enabled": False}}]}


def _secured_once(response: httpx.Response) -> None:
    names = [name.lower() for name, _ in response.headers.raw]
    for name, value in BASELINE:
        assert names.count(name) == 1, name
        assert response.headers[name.decode()] == value.decode()
    assert names.count(b"content-security-policy") == 1
    assert response.headers["content-security-policy"] == API_CSP
    assert b"strict-transport-security" not in names  # plain http


@pytest.mark.parametrize("origins", [[], ["https://app.example"]])
def test_every_gateway_answer_carries_the_security_headers_once(
    tmp_path: Path, sqlite_url: str, upstream: str, origins: list[str]
) -> None:
    config = _route(f"{upstream}/v1")
    with (
        live_gateway(tmp_path, sqlite_url, config, cors_allow_origins=origins) as gw,
        gw.http() as client,
    ):
        answers = [
            client.post("/v1/chat/completions", json=chat()),  # 200, JSON
            client.post("/v1/chat/completions", json={"model": "m"}),  # 400
            client.post("/v1/embeddings", json={"model": "m", "input": "hi"}),
            httpx.post(f"{gw.url}/v1/chat/completions", json=chat()),  # no key: 401
        ]
        with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            stream.read()
            answers.append(stream)
        answers.append(client.get("/v1/models"))  # not on the fast path: the layer behind it
    assert [a.status_code for a in answers][:2] == [200, 400]
    assert answers[3].status_code == 401
    for answer in answers:
        _secured_once(answer)


def test_gateway_answers_over_https_carry_hsts(tmp_path: Path, sqlite_url: str, upstream: str) -> None:
    from starlette.testclient import TestClient

    from watchkeep.app import create_app
    from watchkeep.config import Settings

    settings = Settings(home=tmp_path, database_url=sqlite_url, worker_enabled=False, gateway_enabled=True)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        response = client.post("/v1/chat/completions", json=chat())
    assert response.status_code == 401
    names = [name.lower() for name, _ in response.headers.raw]
    assert names.count(b"strict-transport-security") == 1
    assert names.count(b"x-frame-options") == 1
