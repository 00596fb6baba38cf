"""Spans from the official OpenTelemetry exporter, OTLP/JSON and OpenInference land alike."""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.support.servers import LiveServer


def provider_for(server: LiveServer, service: str = "shop", batch: bool = False) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "staging"})
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one-span-per-export"])
def test_official_exporter_round_trip(live_server: LiveServer, batch: bool) -> None:
    provider = provider_for(live_server, batch=batch)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("handle-question") as root:
        root.set_attribute("watchkeep.user.id", "alice")
        root.set_attribute("watchkeep.session.id", "s-1")
        root.set_attribute("watchkeep.release", "v7")
        with tracer.start_as_current_span("retrieve"):
            pass
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 500,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.input.messages": json.dumps([{"role": "user", "content": "hi"}]),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "hello"}]),
                }
            )
            with tracer.start_as_current_span("tool-call") as tool:
                tool.set_status(Status(StatusCode.ERROR, "tool failed"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()

    detail = live_server.trace(trace_id)
    assert detail["span_count"] == 4
    (root_node,) = detail["roots"]  # type: ignore[misc]
    assert root_node["name"] == "handle-question"
    assert [c["name"] for c in root_node["children"]] == ["retrieve", "chat gpt-4o-mini"]
    chat = root_node["children"][1]
    assert [c["name"] for c in chat["children"]] == ["tool-call"]
    assert chat["operation"] == "chat"
    assert chat["provider"] == "openai"
    assert chat["request_model"] == "gpt-4o-mini"
    assert chat["input_tokens"] == 1000
    assert chat["output_tokens"] == 500
    assert chat["total_tokens"] == 1500
    assert chat["finish_reason"] == "stop"
    # gpt-4o-mini: $0.15 / $0.60 per million tokens, matched by prefix of the response model
    assert abs(chat["cost_usd"] - (1000 * 0.15 + 500 * 0.60) / 1e6) < 1e-12
    assert chat["input"] == [{"role": "user", "content": "hi"}]
    assert chat["output"] == [{"role": "assistant", "content": "hello"}]
    assert "gen_ai.input.messages" not in (chat["attributes"] or {})  # payloads are kept apart
    # trace-level attributes were set on the root only and are copied onto every span
    assert chat["user_id"] == "alice"
    assert chat["children"][0]["release"] == "v7"
    assert chat["environment"] == "staging"
    assert chat["children"][0]["status"] == "error"

    with live_server.client as c:
        listed = c.get("/api/v1/traces", params={"user_id": "alice"}).json()["items"]
        alice_spans = c.get("/api/v1/spans", params={"user_id": "alice"}).json()["items"]
    # every span of the trace, whether the attributes came in the same export or another
    assert len(alice_spans) == 4
    assert len(listed) == 1
    summary = listed[0]
    assert summary["trace_id"] == trace_id
    assert summary["name"] == "handle-question"
    assert summary["span_count"] == 4
    assert summary["total_tokens"] == 1500
    assert summary["has_error"] is True
    assert summary["models"] == ["gpt-4o-mini-2024-07-18"]


def test_openinference_span_maps_to_the_same_columns(live_server: LiveServer) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    span = {
        "traceId": trace_id,
        "spanId": "b7ad6b7169203331",
        "name": "ChatCompletion",
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000002000000000",
        "attributes": [
            {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
            {"key": "llm.model_name", "value": {"stringValue": "claude-3-5-haiku-20241022"}},
            {"key": "llm.provider", "value": {"stringValue": "anthropic"}},
            {"key": "llm.token_count.prompt", "value": {"intValue": "200"}},
            {"key": "llm.token_count.completion", "value": {"intValue": 100}},
            {"key": "llm.token_count.total", "value": {"intValue": 300}},
            {"key": "llm.input_messages.0.message.role", "value": {"stringValue": "user"}},
            {"key": "llm.input_messages.0.message.content", "value": {"stringValue": "Bonjour"}},
            {"key": "llm.output_messages.0.message.role", "value": {"stringValue": "assistant"}},
            {"key": "llm.output_messages.0.message.content", "value": {"stringValue": "Hello"}},
            {"key": "session.id", "value": {"stringValue": "oi-session"}},
            {"key": "user.id", "value": {"stringValue": "bob"}},
            {"key": "tag.tags", "value": {"arrayValue": {"values": [{"stringValue": "beta"}]}}},
        ],
        "events": [{"timeUnixNano": "1700000000250000000", "name": "First Token Stream Event"}],
    }
    body = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    response = httpx.post(f"{live_server.url}/v1/traces", json=body, headers=headers)
    assert response.status_code == 200, response.text
    (node,) = live_server.trace(trace_id)["roots"]  # type: ignore[misc]
    assert node["operation"] == "chat"
    assert node["provider"] == "anthropic"
    assert node["request_model"] == "claude-3-5-haiku-20241022"
    assert node["response_model"] == "claude-3-5-haiku-20241022"
    assert (node["input_tokens"], node["output_tokens"], node["total_tokens"]) == (200, 100, 300)
    assert abs(node["cost_usd"] - (200 * 0.80 + 100 * 4.00) / 1e6) < 1e-12
    assert node["time_to_first_token_ms"] == 250.0
    assert node["session_id"] == "oi-session"
    assert node["user_id"] == "bob"
    assert node["tags"] == ["beta"]
    assert node["input"] == [{"role": "user", "content": "Bonjour"}]
    assert node["output"] == [{"role": "assistant", "content": "Hello"}]
    assert node["attributes"] is None  # everything was mapped


def test_older_genai_names_and_indexed_prompts(live_server: LiveServer) -> None:
    provider = provider_for(live_server, "legacy")
    with provider.get_tracer("t").start_as_current_span("openai.chat") as span:
        span.set_attributes(
            {
                "gen_ai.system": "openai",
                "llm.request.type": "chat",
                "gen_ai.request.model": "gpt-3.5-turbo",
                "gen_ai.usage.prompt_tokens": 10,
                "gen_ai.usage.completion_tokens": 20,
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": "be brief",
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": "hi",
                "gen_ai.completion.0.content": "hello",
                "gen_ai.usage.cost": 0.5,
            }
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    (node,) = live_server.trace(trace_id)["roots"]  # type: ignore[misc]
    assert node["provider"] == "openai"
    assert node["operation"] == "chat"
    assert (node["input_tokens"], node["output_tokens"]) == (10, 20)
    assert node["cost_usd"] == 0.5  # a reported cost wins over the price table
    assert node["input"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert node["output"] == [{"content": "hello"}]
