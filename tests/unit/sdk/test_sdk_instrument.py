"""openai and llama.cpp instrumentation, with the openai client on an in-memory transport."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import watchkeep as wk
from watchkeep import semconv
from watchkeep.sdk import testing as stub
from watchkeep.sdk.client import Client
from watchkeep.sdk.testing import OtlpSink

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def _handler(request: httpx.Request) -> httpx.Response:
    status, headers, body = stub.chat_respond(request.content)
    return httpx.Response(status, headers=headers, content=body)


def _clients() -> tuple[Any, Any]:
    sync = openai.OpenAI(
        api_key="x",
        base_url="http://stub/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(_handler)),
    )
    async_client = openai.AsyncOpenAI(
        api_key="x",
        base_url="http://stub/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(_handler)),
    )
    return sync, async_client


@pytest.fixture
def instrumented(client: Client) -> Iterator[None]:
    assert wk.instrument("openai")
    yield
    wk.uninstrument("openai")


def _chat_spans(sink: OtlpSink) -> list[Any]:
    return [s for s in sink.spans if s.attributes.get(semconv.GEN_AI_OPERATION_NAME) == "chat"]


def test_sync_and_async_completions_become_genai_spans(instrumented: None, sink: OtlpSink) -> None:
    sync, async_client = _clients()

    @wk.observe(name="handler")
    def handle() -> str:
        reply = sync.chat.completions.create(
            model=stub.CHAT_MODEL, messages=MESSAGES, temperature=0.2, max_tokens=20
        )
        return str(reply.choices[0].message.content)

    async def handle_async() -> None:
        await async_client.chat.completions.create(model=stub.CHAT_MODEL, messages=MESSAGES)

    assert handle() == "Hello!"
    asyncio.run(handle_async())
    wk.flush(5)
    spans = _chat_spans(sink)
    assert len(spans) == 2
    handler = next(s for s in sink.spans if s.name == "handler")
    first = next(s for s in spans if s.parent_span_id == handler.span_id)
    attrs = first.attributes
    assert first.name == f"chat {stub.CHAT_MODEL}"
    assert first.kind == 3
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == stub.CHAT_MODEL
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == stub.CHAT_MODEL
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 20
    assert json.loads(attrs[semconv.GEN_AI_INPUT_MESSAGES])[1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "hi"}],
    }
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}], "finish_reason": "stop"}
    ]


@pytest.mark.parametrize("use_async", [False, True])
def test_streams_record_first_token_content_and_usage(
    instrumented: None, sink: OtlpSink, use_async: bool
) -> None:
    sync, async_client = _clients()
    kwargs = {
        "model": stub.CHAT_MODEL,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if use_async:

        async def run() -> list[Any]:
            stream = await async_client.chat.completions.create(**kwargs)
            return [chunk async for chunk in stream]

        chunks = asyncio.run(run())
    else:
        with sync.chat.completions.create(**kwargs) as stream:
            chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    wk.flush(5)
    (span,) = _chat_spans(sink)
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attrs[semconv.WK_TIME_TO_FIRST_TOKEN_MS] >= 0
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert json.loads(attrs[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Hello!"
    assert [e[0] for e in span.events] == [semconv.WK_FIRST_TOKEN_EVENT]


def test_api_errors_propagate_and_fail_the_span(instrumented: None, sink: OtlpSink) -> None:
    sync, _ = _clients()
    with pytest.raises(openai.InternalServerError):
        sync.chat.completions.create(model="fail", messages=MESSAGES)
    wk.flush(5)
    (span,) = _chat_spans(sink)
    assert span.status_code == 2
    assert "InternalServerError" in span.status_message


def test_one_client_object_is_traced_once_and_others_not(client: Client, sink: OtlpSink) -> None:
    traced, untraced = _clients()[0], _clients()[0]
    assert wk.instrument(traced)
    assert not wk.instrument(traced)  # idempotent
    try:
        traced.chat.completions.create(model=stub.CHAT_MODEL, messages=MESSAGES)
        untraced.chat.completions.create(model=stub.CHAT_MODEL, messages=MESSAGES)
        wk.instrument("openai")  # class-level too: the instance must not be traced twice
        traced.chat.completions.create(model=stub.CHAT_MODEL, messages=MESSAGES)
        wk.flush(5)
        assert len(_chat_spans(sink)) == 2
    finally:
        wk.uninstrument("openai")
        wk.uninstrument(traced)


def test_capture_content_off_keeps_messages_out(sink: OtlpSink, home: Any) -> None:
    active = wk.init(
        endpoint=sink.url, api_key="test-key", home=home, capture_content=False, flush_interval=0.05
    )
    wk.instrument("openai")
    try:
        _clients()[0].chat.completions.create(model=stub.CHAT_MODEL, messages=MESSAGES)
        wk.flush(5)
        (span,) = _chat_spans(sink)
        assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
        assert semconv.GEN_AI_OUTPUT_MESSAGES not in span.attributes
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    finally:
        wk.uninstrument("openai")
        active.shutdown(2)


class _FakeLlama:
    """The slice of ``llama_cpp.Llama`` the instrumentation relies on."""

    def __init__(self, model_path: str) -> None:
        self.model_path = model_path

    def create_chat_completion(
        self, messages: list[dict[str, str]], stream: bool = False, **kwargs: Any
    ) -> Any:
        request = {"messages": messages, "stream": stream}
        if not stream:
            return stub.chat_completion(request)
        raw = stub.chat_stream_body(request).split(b"\n\n")
        return (json.loads(line[6:]) for line in raw if line and b"[DONE]" not in line)


@pytest.fixture
def fake_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> type[_FakeLlama]:
    module = types.ModuleType("llama_cpp")
    fake = type("Llama", (_FakeLlama,), {"__module__": "llama_cpp"})
    module.Llama = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    return fake


def test_llama_cpp_chat_completions_plain_and_streamed(
    client: Client, sink: OtlpSink, fake_llama_cpp: Any
) -> None:
    assert wk.instrument("llama_cpp")
    try:
        llm = fake_llama_cpp("/models/SmolLM2-135M.gguf")
        llm.create_chat_completion(MESSAGES)
        parts = [
            c["choices"][0]["delta"].get("content")
            for c in llm.create_chat_completion(messages=MESSAGES, stream=True)
        ]
        assert "".join(p for p in parts if p) == "Hello!"
    finally:
        wk.uninstrument("llama_cpp")
    wk.flush(5)
    plain, streamed = sorted(_chat_spans(sink), key=lambda s: s.start_ns)
    assert plain.attributes[semconv.GEN_AI_PROVIDER_NAME] == "llama_cpp"
    assert plain.attributes[semconv.GEN_AI_REQUEST_MODEL] == "SmolLM2-135M.gguf"
    assert plain.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert streamed.attributes[semconv.WK_TIME_TO_FIRST_TOKEN_MS] >= 0
    assert json.loads(streamed.attributes[semconv.GEN_AI_INPUT_MESSAGES])[0]["role"] == "system"


def test_unknown_targets_warn_instead_of_raising(caplog: pytest.LogCaptureFixture) -> None:
    assert wk.instrument("no-such-library") is False
    assert wk.instrument(object()) is False
    assert "no-such-library" in caplog.text
