"""A fast stand-alone OpenAI-compatible mock upstream, for benchmarks and fault-injection tests.

Raw asyncio with httptools (and uvloop when present), so it is never the bottleneck
of what it measures. Faults are chosen by a path prefix before ``/v1``, so one process
serves healthy and faulty upstreams side by side:

    /v1/...                    healthy, after --latency-ms
    /status-503/v1/...         answers that status (with Retry-After: 0 for 429 and 503)
    /slow-2000/v1/...          waits 2000 ms first
    /reset/v1/...              closes the connection without answering
    /stall/v1/...              streams one chunk then stalls (non-streaming: never answers)
    /switch-NAME/v1/...        healthy or 500, as set by POST /_control/NAME/fail|ok, or 500 for
                               a share of calls set by POST /_control/NAME/rate-0.25 (evenly
                               spread: call k fails when floor(k*rate) moves; rate-0 heals)

``GET /_stats`` counts requests and streams the client abandoned (closed early).

    python -m watchkeep.devtools.mock_upstream --port 9100 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import httptools
import orjson

_REPLY = "The quick brown fox jumps over the lazy dog."


class _State:
    def __init__(self, latency_ms: float, chunk_delay_ms: float) -> None:
        self.latency = latency_ms / 1000
        self.chunk_delay = chunk_delay_ms / 1000
        self.failing: set[str] = set()
        self.fail_rates: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stats = {"requests": 0, "aborted_streams": 0, "completed_streams": 0}

    def fails(self, name: str) -> bool:
        """Whether this call of switch ``name`` fails: switched off, or its share of calls."""
        if name in self.failing:
            return True
        rate = self.fail_rates.get(name, 0.0)
        k = self.calls[name] = self.calls.get(name, 0) + 1
        return int(k * rate) > int((k - 1) * rate)


def _completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": _REPLY}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        }
    )


def _embeddings(model: str, count: int) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4]} for i in range(count)]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
    )


def _chunks(model: str) -> list[bytes]:
    base: dict[str, Any] = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
    }
    words = _REPLY.split(" ")
    events = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w}, "finish_reason": None}],
        }
        for i, w in enumerate(words)
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(
        {**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}}
    )
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


class _Connection(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body = bytearray()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()

    @property
    def closed(self) -> bool:
        return self.lost.is_set()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        url, body = self.url.decode(), bytes(self.body)
        self.url, self.body = b"", bytearray()
        asyncio.get_running_loop().create_task(self.handle(method, url, body))

    def write(self, status: int, body: bytes, extra: str = "") -> None:
        if self.transport is None or self.closed:
            return
        head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
        self.transport.write(head.encode() + body)

    async def handle(self, method: bytes, url: str, raw: bytes) -> None:
        state = self.state
        if url == "/_stats":
            self.write(200, orjson.dumps(state.stats))
            return
        if url.startswith("/_control/"):
            _, _, name, action = url.split("/", 3)
            if action.startswith("rate-"):
                state.fail_rates[name] = min(1.0, max(0.0, float(action[5:])))
            else:
                (state.failing.add if action == "fail" else state.failing.discard)(name)
            self.write(200, b"{}")
            return
        state.stats["requests"] += 1
        prefix, _, path = url.partition("/v1/")
        fault = prefix.strip("/")
        if state.latency:
            await asyncio.sleep(state.latency)
        if fault.startswith("slow-"):
            await asyncio.sleep(float(fault[5:]) / 1000)
        if fault == "reset" and self.transport is not None:
            self.transport.abort()
            return
        status = 200
        if fault.startswith("status-"):
            status = int(fault[7:])
        elif fault.startswith("switch-") and state.fails(fault[7:]):
            status = 500
        if status != 200:
            retry = "retry-after: 0\r\n" if status in (429, 503) else ""
            self.write(status, b'{"error": {"message": "injected fault", "type": "server_error"}}', retry)
            return
        try:
            request = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            self.write(400, b'{"error": {"message": "bad json", "type": "invalid_request_error"}}')
            return
        model = str(request.get("model", "mock"))
        if path.startswith("embeddings"):
            inputs = request.get("input")
            self.write(200, _embeddings(model, len(inputs) if isinstance(inputs, list) else 1))
        elif request.get("stream"):
            await self.stream(model, stall=fault == "stall")
        elif fault == "stall":
            await asyncio.sleep(3600)
        else:
            self.write(200, _completion(model))

    async def stream(self, model: str, stall: bool) -> None:
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for i, event in enumerate(_chunks(model)):
            if self.closed:
                self.state.stats["aborted_streams"] += 1
                return
            if stall and i == 1:
                await self.lost.wait()
                self.state.stats["aborted_streams"] += 1
                return
            if i and self.state.chunk_delay:
                await asyncio.sleep(self.state.chunk_delay)
            self.transport.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        self.transport.write(b"0\r\n\r\n")
        self.state.stats["completed_streams"] += 1


async def serve(port: int, latency_ms: float, chunk_delay_ms: float, host: str = "127.0.0.1") -> None:
    """Serve until cancelled."""
    state = _State(latency_ms, chunk_delay_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(state), host, port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.latency_ms, args.chunk_delay_ms))


if __name__ == "__main__":
    main()
