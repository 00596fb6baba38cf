"""The SDK against a real server (or the local sink until the server's fixture exists)."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.sdk_live import Backend, Relay

import watchkeep as wk
from watchkeep.sdk.client import Client
from watchkeep.sdk.testing import CHAT_MODEL, ChatStubServer

openai = pytest.importorskip("openai")


def test_nested_observed_functions_arrive_as_one_tree(traced: Client, backend: Backend) -> None:
    @wk.observe(name="retrieve", kind="retriever")
    def retrieve(query: str) -> list[str]:
        return [query.upper()]

    @wk.observe(name="answer", kind="llm")
    async def answer(docs: list[str]) -> str:
        wk.update_current(model="m", input_tokens=4, output_tokens=2)
        return docs[0]

    @wk.observe(name="pipeline", kind="chain")
    def pipeline(query: str) -> tuple[str, str | None]:
        return asyncio.run(answer(retrieve(query))), wk.current_trace_id()

    with wk.context(user_id="u-1", session_id="s-1"):
        result, trace_id = pipeline("q")
    assert result == "Q"
    assert trace_id is not None
    assert wk.flush(10)
    spans = {s["name"]: s for s in backend.wait_spans(trace_id, 3)}
    assert set(spans) == {"pipeline", "retrieve", "answer"}
    assert spans["pipeline"]["parent_span_id"] is None
    assert spans["retrieve"]["parent_span_id"] == spans["pipeline"]["span_id"]
    assert spans["answer"]["parent_span_id"] == spans["pipeline"]["span_id"]
    for span in spans.values():
        assert span["user_id"] == "u-1"


def test_openai_client_on_a_local_compatible_server(traced: Client, backend: Backend) -> None:
    wk.instrument("openai")
    try:
        with ChatStubServer() as stub:
            client = openai.OpenAI(api_key="x", base_url=stub.base_url, max_retries=0)

            @wk.observe(name="turn")
            def turn() -> tuple[str, str, str | None]:
                reply = client.chat.completions.create(
                    model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}]
                )
                stream = client.chat.completions.create(
                    model=CHAT_MODEL,
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                return str(reply.choices[0].message.content), streamed, wk.current_trace_id()

            plain, streamed, trace_id = turn()
    finally:
        wk.uninstrument("openai")
    assert plain == streamed == "Hello!"
    assert trace_id is not None
    assert wk.flush(10)
    spans = backend.wait_spans(trace_id, 3)
    chats = [s for s in spans if s["operation"] == "chat"]
    assert len(chats) == 2
    for chat in chats:
        assert chat["input_tokens"] == 11
        assert chat["output_tokens"] == 3
        assert chat["response_model"] == CHAT_MODEL
        assert chat["provider"] == "openai"
    assert any(c["time_to_first_token_ms"] is not None for c in chats)


def test_server_down_for_the_whole_workload_then_up(traced: Client, backend: Backend, relay: Relay) -> None:
    relay.down()

    @wk.observe(name="step")
    def step(i: int) -> int:
        return i

    @wk.observe(name="job")
    def job() -> str | None:
        for i in range(300):
            step(i)
        return wk.current_trace_id()

    trace_ids = [job() for _ in range(5)]  # raises nothing while the server is away
    assert wk.flush(2)
    assert traced.stats().exported == 0
    assert traced.stats().spooled == 5 * 301
    relay.up()
    assert wk.flush(20)
    for trace_id in trace_ids:
        assert trace_id is not None
        spans = backend.wait_spans(trace_id, 301)
        assert len(spans) == 301
        assert len({s["span_id"] for s in spans}) == 301
    assert traced.stats().dropped == 0
