"""GenAI events sent as OTLP log records (HTTP and gRPC) become their span's messages."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.keys import new_key
from tests.support.otlp_grpc import GrpcLiveServer, grpc_live_server
from watchkeep.config import Settings

SYSTEM = {"content": "You answer in one word."}
USER = {"content": "Capital of France?"}
CHOICE = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris"}}


@pytest.fixture
def server(settings: Settings, database_url: str) -> Iterator[GrpcLiveServer]:
    with grpc_live_server(settings, database_url) as s:
        yield s


def chat_with_events() -> tuple[str, str, Sequence[ReadableSpan], Sequence[ReadableLogRecord]]:
    """A chat span and the GenAI event records an OTel instrumentation emits inside it."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    records = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    logger = logger_provider.get_logger("opentelemetry.instrumentation.openai_v2")
    with tracer_provider.get_tracer("test").start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"})
        logger.emit(event_name="gen_ai.system.message", body=SYSTEM, attributes={"gen_ai.system": "openai"})
        logger.emit(event_name="gen_ai.user.message", body=USER, attributes={"gen_ai.system": "openai"})
        logger.emit(event_name="gen_ai.choice", body=CHOICE, attributes={"gen_ai.system": "openai"})
        logger.emit(body="an ordinary log line")  # counted, not stored
        ctx = span.get_span_context()
    logger.emit(event_name="gen_ai.user.message", body=USER)  # outside any span: not stored
    return (
        format(ctx.trace_id, "032x"),
        format(ctx.span_id, "016x"),
        spans.get_finished_spans(),
        records.get_finished_logs(),
    )


def export_logs(server: GrpcLiveServer, transport: str, records: Sequence[ReadableLogRecord]) -> None:
    key = server.http.api_key
    exporter: Any
    if transport == "grpc":
        exporter = GrpcLogExporter(
            endpoint=server.target, insecure=True, headers=(("authorization", f"Bearer {key}"),), timeout=10
        )
    else:
        exporter = HttpLogExporter(
            endpoint=f"{server.http.url}/v1/logs", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
    assert exporter.export(records) is LogRecordExportResult.SUCCESS
    exporter.shutdown()


def export_spans(server: GrpcLiveServer, spans: Sequence[ReadableSpan]) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{server.http.url}/v1/traces", headers={"Authorization": f"Bearer {server.http.api_key}"}
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("logs_first", [False, True], ids=["span-then-logs", "logs-then-span"])
def test_genai_event_records_become_the_spans_messages(
    server: GrpcLiveServer, transport: str, logs_first: bool
) -> None:
    trace_id, span_id, spans, records = chat_with_events()
    if logs_first:
        export_logs(server, transport, records)
        export_spans(server, spans)
    else:
        export_spans(server, spans)
        export_logs(server, transport, records)
    detail = server.http.trace(trace_id)
    (chat,) = detail["roots"]  # type: ignore[misc]
    assert chat["span_id"] == span_id
    assert chat["input"] == [{"role": "system", **SYSTEM}, {"role": "user", **USER}]
    assert chat["output"] == [CHOICE]
    assert detail["span_count"] == 1  # log records never make spans


def test_logs_of_another_project_do_not_touch_this_one(server: GrpcLiveServer, database_url: str) -> None:
    trace_id, _, spans, records = chat_with_events()
    export_spans(server, spans)
    other = new_key(database_url)
    response = httpx.post(
        f"{server.http.url}/v1/logs",
        content=_encode(records),
        headers={"Authorization": f"Bearer {other}", "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    (chat,) = server.http.trace(trace_id)["roots"]  # type: ignore[misc]
    assert chat["input"] is None
    assert chat["output"] is None


def _encode(records: Sequence[ReadableLogRecord]) -> bytes:
    return bytes(encode_logs(records).SerializeToString())


def test_otlp_json_logs_and_partial_success(server: GrpcLiveServer) -> None:
    rng = random.Random(5)
    trace_id, span_id = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "eventName": "gen_ai.user.message",
                                "body": {
                                    "kvlistValue": {
                                        "values": [{"key": "content", "value": {"stringValue": "hi"}}]
                                    }
                                },
                            },
                            {  # older SDKs name the event in an attribute
                                "traceId": trace_id,
                                "spanId": span_id,
                                "attributes": [
                                    {"key": "event.name", "value": {"stringValue": "gen_ai.choice"}}
                                ],
                                "body": {
                                    "kvlistValue": {"values": [{"key": "index", "value": {"intValue": "0"}}]}
                                },
                            },
                            {
                                "traceId": "abc",
                                "spanId": span_id,
                                "eventName": "gen_ai.user.message",
                                "body": {"stringValue": "hi"},
                            },
                        ]
                    }
                ]
            }
        ]
    }
    with server.http.client as c:
        answer = c.post("/v1/logs", json=body)
        assert answer.status_code == 200
        partial = answer.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "1"
        assert "invalid trace or span id" in partial["errorMessage"]
        refused = c.post("/v1/logs", content=b"{not json", headers={"Content-Type": "application/json"})
        assert refused.status_code == 400
    # the span arrives later and finds its messages
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "chat",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
    }
    with server.http.client as c:
        assert (
            c.post("/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).status_code
            == 200
        )
    (chat,) = server.http.trace(trace_id)["roots"]  # type: ignore[misc]
    assert chat["input"] == [{"role": "user", "content": "hi"}]
    assert chat["output"] == [{"index": 0}]


def test_viewer_cannot_send_logs(server: GrpcLiveServer, database_url: str) -> None:
    viewer = new_key(database_url, role="viewer")
    response = httpx.post(
        f"{server.http.url}/v1/logs",
        content=b"",
        headers={"Authorization": f"Bearer {viewer}", "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 403


def test_input_and_output_events_in_separate_exports_both_land(server: GrpcLiveServer) -> None:
    # A batching processor often flushes the prompt events before the call returns.
    trace_id, _, spans, records = chat_with_events()
    prompt, rest = records[:2], records[2:]
    export_logs(server, "http", prompt)
    export_spans(server, spans)
    export_logs(server, "grpc", rest)
    export_logs(server, "http", records)  # a retried export changes nothing
    (chat,) = server.http.trace(trace_id)["roots"]  # type: ignore[misc]
    assert chat["input"] == [{"role": "system", **SYSTEM}, {"role": "user", **USER}]
    assert chat["output"] == [CHOICE]
