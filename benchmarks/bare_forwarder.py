"""The floor of the gateway benchmark: the least an ASGI proxy on this stack can add.

A bare uvicorn app that reads the body, picks the upstream by model and forwards it over
a pooled aiohttp session: no keys, routing table, policies, metrics or tracing. A
``"stream": true`` request is relayed chunk by chunk as the upstream sends it. What
watchkeep adds above this is its own cost; what this adds is the stack's and the
machine's (loopback hops, process wake-ups).

    UPSTREAMS='{"m0": "http://127.0.0.1:9000"}' uvicorn bare_forwarder:app --port 9100
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import orjson

_UPSTREAMS: dict[str, str] = orjson.loads(os.environ.get("UPSTREAMS", "{}"))
_session: aiohttp.ClientSession | None = None


async def _reply(send: Any, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def _relay(send: Any, response: aiohttp.ClientResponse) -> None:
    """Each piece of a streamed answer as it arrives (the time to first chunk's floor)."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    async for piece in response.content.iter_any():
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI entry point."""
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/readyz":
        await _reply(send, 200, b"{}")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    request = orjson.loads(body)
    upstream = _UPSTREAMS[request["model"]]
    async with _session.post(
        f"{upstream}/v1/chat/completions", data=body, headers={"content-type": "application/json"}
    ) as response:
        if request.get("stream"):
            await _relay(send, response)
        else:
            await _reply(send, response.status, await response.read())
