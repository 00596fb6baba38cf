"""``openai.AsyncOpenAI`` streaming from the embedded model (SmolLM2 in llama.cpp) through
the gateway: chunks arrive as they are generated, and the stored trace has the usage,
the time to first token and the streamed answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.support.gateway import live_gateway
from tests.support.payloads import message_text, span_payloads

from watchkeep.gateway.config import local_backend_available

pytestmark = pytest.mark.skipif(not local_backend_available(), reason="no embedded model or xllamacpp")


async def _stream(url: str, key: str) -> tuple[str, list[Any]]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in raw.parse()]
    return str(raw.headers["x-watchkeep-trace-id"]), chunks


def test_async_client_streams_from_the_embedded_model(tmp_path: Path, database_url: str) -> None:
    with live_gateway(tmp_path, database_url, None) as gw:
        trace_id, chunks = asyncio.run(_stream(gw.url, gw.key))
        span = gw.wait_span(trace_id)
        sent, answered = span_payloads(gw.url, gw.key, trace_id, span["span_id"])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert len([c for c in chunks if c.choices]) >= 2  # token by token, not one block
    usage = chunks[-1].usage
    assert usage is not None
    assert 0 < usage.completion_tokens <= 5
    assert span["attributes"]["watchkeep.gateway.stream"] is True
    assert span["request_model"] == "smollm2"
    assert span["time_to_first_token_ms"] is not None
    assert 0 < span["time_to_first_token_ms"] <= span["duration_ms"]
    assert (span["input_tokens"], span["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    assert message_text(sent) == "Name a colour."
    assert message_text(answered) == text
