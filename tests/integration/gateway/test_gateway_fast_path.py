"""The gateway's ASGI fast path behaves as the FastAPI routes did: metrics, errors, isolation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from tests.support.gateway import chat, live_gateway
from tests.support.servers import free_port

from watchkeep.gateway.dispatch import Attempt
from watchkeep.gateway.tracing import CallRecord


def _route(base_url: str) -> dict[str, Any]:
    deployment = {"name": "up", "backend": "openai_compatible", "base_url": base_url}
    return {"routes": [{"name": "m", "deployments": [deployment], "cache": {"enabled": False}}]}


def test_fast_path_requests_are_counted_under_their_route(
    tmp_path: Path, sqlite_url: str, upstream: str
) -> None:
    with live_gateway(tmp_path, sqlite_url, _route(f"{upstream}/v1")) as gw, gw.http() as client:
        assert client.post("/v1/chat/completions", json=chat()).status_code == 200
        assert client.post("/v1/chat/completions", json={"model": "m"}).status_code == 400
        exposition = httpx.get(f"{gw.url}/metrics").text  # the operator's scrape: loopback, no key
    assert (
        'watchkeep_http_requests_total{method="POST",route="/v1/chat/completions",status="200"} 1.0'
        in exposition
    )
    assert (
        'watchkeep_http_requests_total{method="POST",route="/v1/chat/completions",status="400"} 1.0'
        in exposition
    )


def test_an_unexpected_failure_is_an_openai_style_500(
    tmp_path: Path, sqlite_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_gateway(tmp_path, sqlite_url, _route(f"{upstream}/v1")) as gw, gw.http() as client:

        async def broken(_req: Any, record: CallRecord, *_: Any) -> Any:
            record.log.route = "m"
            record.log.attempts.append(Attempt("up", "ok", 1.0))  # a try made before the bug
            raise RuntimeError("a bug")

        monkeypatch.setattr(gw.app.state.services.gateway, "chat", broken)
        response = client.post("/v1/chat/completions", json=chat())
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        # The call still ends: its try, its request and its 500 are counted.
        exposition = httpx.get(f"{gw.url}/metrics").text
        assert 'watchkeep_gateway_requests_total{operation="chat",route="m",status="500"} 1.0' in exposition
        assert (
            'watchkeep_gateway_upstream_attempts_total{deployment="up",outcome="ok",route="m"} 1.0'
            in exposition
        )
        monkeypatch.undo()
        assert client.post("/v1/chat/completions", json=chat()).status_code == 200


@pytest.fixture
def cookie_upstream() -> Iterator[tuple[str, list[str | None]]]:
    """An upstream that sets a cookie on every answer and records the cookies it was sent."""
    seen: list[str | None] = []

    async def completions(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": "x",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
        response.set_cookie("session", f"caller-{len(seen)}")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}/v1", seen  # a host name: jars refuse IP cookies
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_an_upstream_cookie_never_reaches_the_next_caller(
    tmp_path: Path, sqlite_url: str, cookie_upstream: tuple[str, list[str | None]]
) -> None:
    base_url, seen = cookie_upstream
    with live_gateway(tmp_path, sqlite_url, _route(base_url)) as gw, gw.http() as client:
        for _ in range(3):
            response = client.post("/v1/chat/completions", json=chat())
            assert response.status_code == 200, response.text
            assert "set-cookie" not in response.headers
    assert seen == [None, None, None]
