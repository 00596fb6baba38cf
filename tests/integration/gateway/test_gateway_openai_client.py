"""The official OpenAI client (sync, async, streaming) against the gateway, and the traces it leaves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from tests.support.gateway import LiveGateway, live_gateway


def _upstream_config(upstream: str) -> dict[str, object]:
    return {
        "routes": [
            {
                "name": "m",
                "deployments": [
                    {
                        "name": "up",
                        "backend": "openai_compatible",
                        "base_url": f"{upstream}/v1",
                        "api_key_env": "WK_TEST_UPSTREAM_KEY",
                        "model": "upstream-model",
                        "version": "v7",
                    }
                ],
            }
        ]
    }


def _client(gw: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)


def test_sync_async_and_streaming_through_an_upstream(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_TEST_UPSTREAM_KEY", "sk-upstream-secret")
    with live_gateway(tmp_path, database_url, _upstream_config(upstream)) as gw:
        client = _client(gw)
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "Say something"}], temperature=0
        )
        reply = raw.parse()
        assert reply.model == "m"
        assert reply.choices[0].message.content == "The quick brown fox jumps over the lazy dog."
        assert reply.usage is not None
        assert reply.usage.total_tokens == 21

        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Stream it"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "The quick brown fox jumps over the lazy dog."
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 9
        assert all(not c.choices or c.usage is None for c in chunks[:-1])

        async def use_async() -> tuple[str | None, list[float]]:
            aclient = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
            async with aclient:
                done = await aclient.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "async"}]
                )
                emb = await aclient.embeddings.create(model="m", input=["a", "b"])
            return done.choices[0].message.content, emb.data[1].embedding

        content, vector = asyncio.run(use_async())
        assert content == "The quick brown fox jumps over the lazy dog."
        assert vector == [0.1, 0.2, 0.3, 0.4]
        assert [m.id for m in client.models.list()] == ["m"]

        span = gw.wait_span(raw.headers["x-watchkeep-trace-id"])
        assert span["operation"] == "chat"
        assert span["request_model"] == "m"
        assert span["response_model"] == "upstream-model"
        assert span["model_version"] == "v7"
        assert span["provider"] == "openai"
        assert (span["input_tokens"], span["output_tokens"]) == (12, 9)
        assert span["attributes"]["watchkeep.deployment"] == "up"
        assert span["attributes"]["watchkeep.gateway.cache_hit"] is False
        with gw.http() as http:
            routes = http.get("/api/v1/routes").text
        assert "sk-upstream-secret" not in routes
        assert "WK_TEST_UPSTREAM_KEY" in routes


def test_streamed_trace_records_time_to_first_token(tmp_path: Path, sqlite_url: str, upstream: str) -> None:
    with live_gateway(tmp_path, sqlite_url, _upstream_config(upstream)) as gw:
        stream = _client(gw).chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert len([c for c in stream.parse() if c.choices]) == 10
        span = gw.wait_span(stream.headers["x-watchkeep-trace-id"])
    assert span["time_to_first_token_ms"] is not None
    assert span["finish_reason"] == "stop"
    assert span["output_tokens"] == 9
    assert span["attributes"]["watchkeep.gateway.stream"] is True


def test_the_embedded_model_answers_the_openai_client(tmp_path: Path, sqlite_url: str) -> None:
    with live_gateway(tmp_path, sqlite_url, None) as gw:
        client = _client(gw)
        reply = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert 0 < reply.usage.completion_tokens <= 8
        streamed = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(streamed)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens <= 6
        vectors = client.embeddings.create(model="smollm2", input="hello world")
        assert len(vectors.data[0].embedding) > 100
