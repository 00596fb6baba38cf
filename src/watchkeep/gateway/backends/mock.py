"""A deterministic in-process backend: fixed or echoed replies, latency, pacing and faults.

The same request always gets the same reply, so caches and tests can rely on it.
Faults apply to every call, or to the first ``fault_first`` calls only, which is how
tests show a breaker opening and then closing again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from watchkeep.gateway.backends.base import InFlight, Json
from watchkeep.gateway.config import DeploymentSpec
from watchkeep.gateway.errors import UpstreamError, upstream_status_error
from watchkeep.gateway.protocol import message_text

_FOREVER = 3600.0


class MockBackend:
    """Answers like an OpenAI upstream without one."""

    def __init__(self, spec: DeploymentSpec) -> None:
        self._spec = spec.mock
        self._model = spec.model or spec.name
        self.calls = 0
        self.in_flight = InFlight()

    async def _before(self) -> None:
        self.calls += 1
        m = self._spec
        if m.latency_ms:
            await asyncio.sleep(m.latency_ms / 1000)
        if m.fault == "none" or (m.fault_first is not None and self.calls > m.fault_first):
            return
        if m.fault == "status":
            raise upstream_status_error(m.fault_status, f"mock fault {m.fault_status}", m.retry_after_s)
        if m.fault == "reset":
            raise UpstreamError("mock connection reset")
        if m.fault == "timeout":
            await asyncio.sleep(_FOREVER)

    def _stalls(self) -> bool:
        m = self._spec
        return m.fault == "stall" and (m.fault_first is None or self.calls <= m.fault_first)

    def reply(self, body: Json) -> str:
        """The deterministic reply to ``body``."""
        if self._spec.reply is not None:
            return self._spec.reply
        messages: list[Any] = body.get("messages") or []
        last = message_text(messages[-1]) if messages else ""
        return f"mock reply to: {last}"

    @staticmethod
    def _prompt_tokens(body: Json) -> int:
        return sum(len(message_text(m).split()) + 3 for m in body.get("messages") or [])

    async def chat(self, body: Json) -> Json:
        await self._before()
        if self._stalls():
            await asyncio.sleep(_FOREVER)
        text = self.reply(body)
        prompt, completion = self._prompt_tokens(body), len(text.split())
        return {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    async def stream(self, body: Json) -> AsyncIterator[list[Json]]:
        await self._before()
        m = self._spec
        text = self.reply(body)
        words = text.split(" ")
        size = max(1, -(-len(words) // m.stream_chunks))
        pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        base = {
            "id": f"chatcmpl-mock-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model,
        }
        for i, piece in enumerate(pieces):
            if self._stalls() and i >= m.stall_after_chunks:
                await asyncio.sleep(_FOREVER)
            if i and m.chunk_delay_ms:
                await asyncio.sleep(m.chunk_delay_ms / 1000)
            content = piece if i == 0 else " " + piece
            delta: Json = {"role": "assistant", "content": content} if i == 0 else {"content": content}
            yield [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
        prompt, completion = self._prompt_tokens(body), len(words)
        finish = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield [
            finish,
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
        ]

    async def embeddings(self, body: Json) -> Json:
        await self._before()
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(str(text))}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": self._model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def aclose(self) -> None:
        return None


def _vector(text: str, dims: int = 8) -> list[float]:
    """A deterministic unit-free vector for ``text``."""
    codes = [ord(c) for c in text] or [0]
    return [round(sum(codes[i::dims]) % 997 / 997, 6) for i in range(dims)]
