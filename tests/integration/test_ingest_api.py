"""POST /v1/traces over both databases: encodings, partial success, bad input, dedupe."""

from __future__ import annotations

import gzip
import json
import random

import orjson
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.apps import Api
from watchkeep.devtools.synthetic_otlp import build_request

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"


def json_body(spans: list[dict[str, object]], resource: list[dict[str, object]] | None = None) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or []},
                    "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def json_span(span_id: str, parent: str = "", **extra: object) -> dict[str, object]:
    span: dict[str, object] = {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": f"op-{span_id[:4]}",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
        "attributes": [],
    }
    span.update(extra)
    return span


def span_count(api: Api, **params: str) -> int:
    response = api.client.get("/api/v1/spans", params={"limit": 1000, **params}, headers=api.auth)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def test_protobuf_export_is_stored_before_the_answer(api: Api) -> None:
    body, ids = build_request(30, rng=random.Random(3))
    response = api.client.post("/v1/traces", content=body, headers={**api.auth, **PB})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert not parsed.HasField("partial_success")
    assert span_count(api) == 30  # readable at once: the 200 meant committed
    trace_ids = {t for t, _ in ids}
    listed = api.client.get("/api/v1/traces", params={"limit": 500}, headers=api.auth).json()["items"]
    assert {t["trace_id"] for t in listed} == trace_ids


def test_gzip_and_json_bodies(api: Api) -> None:
    body = json_body([json_span("00f067aa0ba902b7")])
    response = api.client.post(
        "/v1/traces", content=gzip.compress(body), headers={**api.auth, **JS, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    assert span_count(api, trace_id=TRACE) == 1


def test_json_accepts_int64_as_strings_enum_names_and_snake_case(api: Api) -> None:
    span = {
        "trace_id": TRACE.upper(),
        "span_id": "00F067AA0BA902B8",
        "name": "snake",
        "kind": "SPAN_KIND_CLIENT",
        "start_time_unix_nano": 1700000000000000000,
        "end_time_unix_nano": "1700000001000000000",
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}],
    }
    body = json.dumps({"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}).encode()
    assert api.client.post("/v1/traces", content=body, headers={**api.auth, **JS}).status_code == 200
    stored = api.client.get("/api/v1/spans", params={"trace_id": TRACE}, headers=api.auth).json()["items"]
    assert len(stored) == 1
    assert stored[0]["span_id"] == "00f067aa0ba902b8"
    assert stored[0]["kind"] == 3
    assert stored[0]["status"] == "error"
    assert stored[0]["input_tokens"] == 12
    assert stored[0]["duration_ms"] == 1000.0


def test_invalid_spans_are_rejected_alone_with_partial_success(api: Api) -> None:
    spans = [
        json_span("00f067aa0ba902b1"),
        json_span("0000000000000000"),  # all-zero span id is invalid
        json_span("00f067aa0ba902b2", startTimeUnixNano="5", endTimeUnixNano="4"),
        json_span("abcd"),  # wrong length
    ]
    response = api.client.post("/v1/traces", content=json_body(spans), headers={**api.auth, **JS})
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    assert "invalid span id" in partial["errorMessage"]
    assert span_count(api, trace_id=TRACE) == 1


def test_protobuf_partial_success_in_protobuf(api: Api) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(16)  # invalid
    span.span_id = b"\x01" * 8
    response = api.client.post("/v1/traces", content=request.SerializeToString(), headers={**api.auth, **PB})
    assert response.status_code == 200
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(response.content)
    assert parsed.partial_success.rejected_spans == 1
    assert "invalid trace id" in parsed.partial_success.error_message


def _llm_calls_counted(api: Api) -> float:
    """``watchkeep_genai_requests_total`` summed over its label sets."""
    lines = api.client.get("/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("watchkeep_genai_requests_total{")
    )


def test_duplicates_are_ignored_and_counted_once(api: Api) -> None:
    body, _ = build_request(9, rng=random.Random(9))  # 3 traces, one LLM call each
    for _ in range(3):
        assert api.client.post("/v1/traces", content=body, headers={**api.auth, **PB}).status_code == 200
    assert span_count(api) == 9
    metrics = api.client.get("/metrics").text
    assert 'watchkeep_ingest_spans_total{outcome="duplicate"}' in metrics
    assert _llm_calls_counted(api) == 3  # replays add no LLM calls to the GenAI metrics
    # An export that repeats those spans and adds three new traces counts only the new calls.
    mixed = ExportTraceServiceRequest()
    mixed.ParseFromString(body)
    newer = ExportTraceServiceRequest()
    newer.ParseFromString(build_request(9, rng=random.Random(10))[0])
    mixed.resource_spans.extend(newer.resource_spans)
    response = api.client.post("/v1/traces", content=mixed.SerializeToString(), headers={**api.auth, **PB})
    assert response.status_code == 200
    assert span_count(api) == 18
    assert _llm_calls_counted(api) == 6


def test_malformed_protobuf_is_400_with_status_and_nothing_written(api: Api) -> None:
    response = api.client.post("/v1/traces", content=b"\xff\xff\xff\xff", headers={**api.auth, **PB})
    assert response.status_code == 400
    status = Status()
    status.ParseFromString(response.content)
    assert "malformed protobuf" in status.message
    assert span_count(api) == 0


def test_malformed_json_names_the_field(api: Api) -> None:
    bad = json_body([json_span("00f067aa0ba902b1"), json_span("00f067aa0ba902b2", startTimeUnixNano="soon")])
    response = api.client.post("/v1/traces", content=bad, headers={**api.auth, **JS})
    assert response.status_code == 400
    assert "spans[1].startTimeUnixNano" in response.json()["message"]
    assert span_count(api) == 0  # the valid span of a rejected batch is not written either
    garbage = api.client.post("/v1/traces", content=b"{not json", headers={**api.auth, **JS})
    assert garbage.status_code == 400
    assert "malformed JSON" in garbage.json()["message"]


def test_wrong_content_type_and_encoding_are_415(api: Api) -> None:
    body = json_body([json_span("00f067aa0ba902b1")])
    assert (
        api.client.post(
            "/v1/traces", content=body, headers={**api.auth, "Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    br = api.client.post("/v1/traces", content=body, headers={**api.auth, **JS, "Content-Encoding": "br"})
    assert br.status_code == 415


def test_body_over_the_limit_is_413(api: Api) -> None:
    limit = api.app.state.services.settings.max_body_bytes
    big = b"x" * (limit + 1)
    assert api.client.post("/v1/traces", content=big, headers={**api.auth, **PB}).status_code == 413
    bomb = gzip.compress(b"\0" * (limit + 10))
    response = api.client.post(
        "/v1/traces", content=bomb, headers={**api.auth, **PB, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    truncated = gzip.compress(json_body([json_span("00f067aa0ba902b1")]))[:-8]
    response = api.client.post(
        "/v1/traces", content=truncated, headers={**api.auth, **JS, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400


def test_missing_or_bad_key_is_401_and_viewer_is_403(api: Api) -> None:
    body, _ = build_request(3)
    assert api.client.post("/v1/traces", content=body, headers=PB).status_code == 401
    bad = {"Authorization": "Bearer wk_notarealkeyatallnotarealkeyatall"}
    assert api.client.post("/v1/traces", content=body, headers={**bad, **PB}).status_code == 401
    viewer = {"Authorization": f"Bearer {api.key_for('viewer')}"}
    assert api.client.post("/v1/traces", content=body, headers={**viewer, **PB}).status_code == 403
    assert span_count(api) == 0


def test_nul_and_oversized_values_are_stored_cleanly(api: Api) -> None:
    attrs = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "m\u0000" + "x" * 1000}},
        {"key": "free.text", "value": {"stringValue": "a\u0000b"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(2**63 - 1)}},
    ]
    body = json_body([json_span("00f067aa0ba902b1", name="n\u0000" * 600, attributes=attrs)])
    assert api.client.post("/v1/traces", content=body, headers={**api.auth, **JS}).status_code == 200
    span = api.client.get("/api/v1/spans", params={"trace_id": TRACE}, headers=api.auth).json()["items"][0]
    assert "\x00" not in span["name"]
    assert len(span["name"]) == 1024
    assert len(span["request_model"]) == 256
    assert span["attributes"]["free.text"] == "a\ufffdb"
    assert span["input_tokens"] is None  # out of range counts are dropped, not stored wrongly


def test_response_body_of_json_error_is_a_status(api: Api) -> None:
    response = api.client.post("/v1/traces", content=b"[]", headers={**api.auth, **JS})
    assert response.status_code == 400
    assert orjson.loads(response.content)["code"] == 3  # INVALID_ARGUMENT
