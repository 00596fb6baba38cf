"""OTLP/gRPC on the server's own gRPC port: the official exporter, keys, limits and status codes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.keys import new_key
from tests.support.otlp_grpc import TRACES_EXPORT, GrpcLiveServer, grpc_live_server
from tests.support.servers import free_port
from watchkeep.config import Settings
from watchkeep.devtools.synthetic_otlp import build_request


@pytest.fixture
def grpc_server(settings: Settings, database_url: str) -> Iterator[GrpcLiveServer]:
    # a 64 KiB cap, so that "too large" is cheap to send
    with grpc_live_server(settings.model_copy(update={"max_body_bytes": 64 * 1024}), database_url) as s:
        yield s


def exporter(server: GrpcLiveServer, key: str, *, gzip: bool = False) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=server.target,
        insecure=True,
        headers=(("authorization", f"Bearer {key}"),),
        compression=grpc.Compression.Gzip if gzip else None,
        timeout=10,
    )


def genai_trace() -> tuple[str, tuple[ReadableSpan, ...]]:
    """A two-span GenAI trace recorded by the official SDK: its id and its spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("answer") as root:
        root.set_attribute("watchkeep.user.id", "alice")
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 3,
                }
            )
        trace_id = format(root.get_span_context().trace_id, "032x")
    return trace_id, memory.get_finished_spans()


def emit_trace(span_exporter: OTLPSpanExporter, expect: SpanExportResult = SpanExportResult.SUCCESS) -> str:
    """Send ``genai_trace()`` in one export through ``span_exporter``; its trace id."""
    trace_id, spans = genai_trace()
    assert span_exporter.export(spans) is expect
    span_exporter.shutdown()
    return trace_id


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_official_grpc_exporter_stores_spans(grpc_server: GrpcLiveServer, gzip: bool) -> None:
    trace_id = emit_trace(exporter(grpc_server, grpc_server.http.api_key, gzip=gzip))
    detail = grpc_server.http.trace(trace_id)
    assert detail["span_count"] == 2
    (root,) = detail["roots"]  # type: ignore[misc]
    assert root["service_name"] == "grpc-shop"
    (chat,) = root["children"]
    assert chat["request_model"] == "gpt-4o-mini"
    assert chat["total_tokens"] == 15
    assert chat["user_id"] == "alice"  # normalised exactly as over HTTP
    metrics = httpx.get(f"{grpc_server.http.url}/metrics").text  # loopback, no key: as Prometheus
    assert 'watchkeep_ingest_requests_total{encoding="grpc",outcome="200"}' in metrics


def test_ack_comes_after_commit_and_reports_partial_success(grpc_server: GrpcLiveServer) -> None:
    body, ids = build_request(3, rng=random.Random(7))
    request = ExportTraceServiceRequest.FromString(body)
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id = bytes(16)  # an all-zero id is invalid per OTLP
    bad.span_id = bytes.fromhex("00000000000000aa")
    answer = ExportTraceServiceResponse.FromString(
        grpc_server.call(TRACES_EXPORT, request.SerializeToString(), grpc_server.http.api_key)
    )
    assert answer.partial_success.rejected_spans == 1
    assert "invalid trace id" in answer.partial_success.error_message
    # the answer came after the commit: the spans are readable at once
    stored = {(t, s["span_id"]) for t, _ in ids for s in grpc_server.http.spans(t)}
    assert stored == set(ids)


def status_of(server: GrpcLiveServer, body: bytes, key: str | None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failure:
        server.call(TRACES_EXPORT, body, key)
    code: grpc.StatusCode = failure.value.code()  # type: ignore[attr-defined]
    return code


def test_missing_or_bad_key_is_unauthenticated(grpc_server: GrpcLiveServer) -> None:
    body, _ = build_request(1, rng=random.Random(1))
    assert status_of(grpc_server, body, None) is grpc.StatusCode.UNAUTHENTICATED
    assert status_of(grpc_server, body, "wk_not_a_real_key") is grpc.StatusCode.UNAUTHENTICATED


def test_official_exporter_with_a_bad_key_fails(grpc_server: GrpcLiveServer) -> None:
    # the official exporter gives up at once (UNAUTHENTICATED is not retryable)
    trace_id = emit_trace(exporter(grpc_server, "wk_bad"), SpanExportResult.FAILURE)
    with grpc_server.http.client as c:
        assert c.get(f"/api/v1/traces/{trace_id}").status_code == 404


def test_viewer_key_is_permission_denied(grpc_server: GrpcLiveServer, database_url: str) -> None:
    viewer = new_key(database_url, role="viewer")
    body, _ = build_request(1, rng=random.Random(2))
    # HTTP ingest refuses viewers too
    response = httpx.post(
        f"{grpc_server.http.url}/v1/traces",
        content=body,
        headers={"Authorization": f"Bearer {viewer}", "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 403
    assert status_of(grpc_server, body, viewer) is grpc.StatusCode.PERMISSION_DENIED


def test_oversized_message_is_resource_exhausted(grpc_server: GrpcLiveServer) -> None:
    body, _ = build_request(400, rng=random.Random(3))
    assert len(body) > 64 * 1024
    assert status_of(grpc_server, body, grpc_server.http.api_key) is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_garbage_is_invalid_argument(grpc_server: GrpcLiveServer) -> None:
    code = status_of(grpc_server, b"\xff\xff\xff not a protobuf", grpc_server.http.api_key)
    assert code is grpc.StatusCode.INVALID_ARGUMENT


def test_a_key_writes_only_into_its_own_project(grpc_server: GrpcLiveServer, database_url: str) -> None:
    other = new_key(database_url)  # project B
    trace_id = emit_trace(exporter(grpc_server, other))
    with grpc_server.http.client as a:  # project A cannot see it
        assert a.get(f"/api/v1/traces/{trace_id}").status_code == 404
    with httpx.Client(base_url=grpc_server.http.url, headers={"Authorization": f"Bearer {other}"}) as b:
        assert b.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 2


def test_watchkeep_server_serves_grpc_beside_http(tmp_path: Path, database_url: str) -> None:
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "WATCHKEEP_HOME": str(tmp_path),
        "WATCHKEEP_LOG_LEVEL": "WARNING",
        "WATCHKEEP_OTLP_GRPC_PORT": str(grpc_port),
        "WATCHKEEP_DATABASE_URL": database_url,
    }
    key = new_key(database_url)
    cli = [sys.executable, "-m", "watchkeep.cli.main"]
    proc = subprocess.Popen([*cli, "server", "--port", str(http_port)], env=env)
    try:
        url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        while not _ready(url):
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.2)
        span_exporter = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}", insecure=True, headers=(("authorization", f"Bearer {key}"),)
        )
        trace_id = emit_trace(span_exporter)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get(f"/api/v1/traces/{trace_id}").json()["span_count"] == 2
    finally:
        proc.terminate()
        proc.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def test_an_empty_port_setting_turns_grpc_off() -> None:
    assert Settings(otlp_grpc_port="").otlp_grpc_port == 0  # type: ignore[arg-type]
    assert Settings.model_fields["otlp_grpc_port"].default == 4317
