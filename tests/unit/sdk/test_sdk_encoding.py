"""Our hand-written OTLP protobuf must parse with the official classes, field for field."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from watchkeep.sdk.config import Config
from watchkeep.sdk.encode import REDACTION_FAILED, Encoder
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.spans import SpanRecord
from watchkeep.sdk.testing import decode_spans


def _record(name: str = "op", parent: int = 0) -> SpanRecord:
    record = SpanRecord(name, SpanKind.CLIENT, (1 << 127) | 5, (1 << 63) | 7, parent, True, None)
    record.end_ns = record.start_ns + 1500
    return record


def _decode(payload: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return request


def test_every_attribute_type_round_trips() -> None:
    record = _record(parent=9)
    record.attributes.update(
        {
            "s": "text é ✓",
            "empty": "",
            "t": True,
            "f": False,
            "i": -42,
            "big": 1 << 70,
            "d": 0.25,
            "arr": ("a", "b"),
            "nums": [1, 2],
            "map": {"k": "v"},
            "raw": b"\x00\x01",
            "long": "x" * 1000,
            "surrogate": "bad\udc80",
        }
    )
    record.set_status(StatusCode.ERROR, "went wrong")
    record.add_event("evt", {"n": 1}, 123)
    payload, count = Encoder(Config(environment="e", release="r"), ErrorLog()).encode([record])
    assert count == 1
    request = _decode(payload)
    (span,) = decode_spans(request)
    assert span.trace_id == f"{(1 << 127) | 5:032x}"
    assert span.span_id == f"{(1 << 63) | 7:016x}"
    assert span.parent_span_id == f"{9:016x}"
    assert span.kind == 3
    assert span.end_ns - span.start_ns == 1500
    attrs = span.attributes
    assert attrs["s"] == "text é ✓"
    assert attrs["empty"] == ""
    assert attrs["t"] is True
    assert attrs["f"] is False
    assert attrs["i"] == -42
    assert attrs["big"] == str(1 << 70)
    assert attrs["d"] == 0.25
    assert attrs["arr"] == ["a", "b"]
    assert attrs["nums"] == [1, 2]
    assert attrs["map"] == {"k": "v"}
    assert attrs["raw"] == b"\x00\x01"
    assert attrs["long"] == "x" * 1000
    assert attrs["surrogate"] == "bad?"
    assert attrs["watchkeep.environment"] == "e"
    assert attrs["watchkeep.release"] == "r"
    assert span.status_code == 2
    assert span.status_message == "went wrong"
    assert span.events == [("evt", {"n": 1})]
    assert span.resource["service.version"] == "r"
    raw = request.resource_spans[0].scope_spans[0]
    assert raw.scope.name == "watchkeep"
    assert raw.spans[0].flags == 0x101


def test_otel_sdk_spans_keep_their_scope_and_resource() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    finished = []
    provider.add_span_processor(
        type(
            "P",
            (),
            {
                "on_start": lambda self, span, parent_context=None: None,
                "on_end": lambda self, span: finished.append(span),
                "shutdown": lambda self: None,
                "force_flush": lambda self, t=0: True,
                "_on_ending": lambda self, span: None,
            },
        )()
    )
    with provider.get_tracer("lib.a", "1.0").start_as_current_span("a") as a:
        a.set_attribute("k", "v")
        with provider.get_tracer("lib.b").start_as_current_span("b", kind=SpanKind.SERVER):
            pass
    payload, count = Encoder(Config(), ErrorLog()).encode([*finished, _record()])
    assert count == 3
    request = _decode(payload)
    scopes = {ss.scope.name: ss for rs in request.resource_spans for ss in rs.scope_spans}
    assert set(scopes) == {"lib.a", "lib.b", "watchkeep"}
    assert scopes["lib.a"].scope.version == "1.0"
    spans = {s.name: s for s in decode_spans(request)}
    assert spans["b"].parent_span_id == spans["a"].span_id
    assert spans["b"].kind == 2
    assert spans["a"].resource["service.name"] == "svc"
    assert spans["op"].resource["telemetry.sdk.name"] == "watchkeep"


def test_redaction_covers_attributes_payloads_and_events_and_fails_closed() -> None:
    def redact(key: str, text: str) -> str:
        if key == "explode":
            raise ValueError("hook bug")
        return text.replace("alice@example.com", "<email>")

    errors = ErrorLog()
    record = _record()
    record.attributes.update(
        {"note": "mail alice@example.com", "explode": "secret", "tags": ("alice@example.com",)}
    )
    record.input = (None, ("alice@example.com",), {})
    record.set_payload(
        "gen_ai.input.messages", [{"role": "user", "content": "I am alice@example.com"}], messages=True
    )
    record.fail(RuntimeError("user alice@example.com not found"))
    payload, _ = Encoder(Config(redact=redact), errors).encode([record])
    assert b"alice@example.com" not in payload
    (span,) = decode_spans(_decode(payload))
    assert span.attributes["note"] == "mail <email>"
    assert span.attributes["explode"] == REDACTION_FAILED
    assert span.attributes["tags"] == ["<email>"]
    assert "<email>" in span.attributes["gen_ai.input.messages"]
    assert errors.count == 1


def test_a_span_whose_payload_cannot_be_encoded_is_still_sent() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    record = _record()
    record.output = Hostile()
    errors = ErrorLog()
    payload, count = Encoder(Config(), errors).encode([record])
    assert count == 1
    assert errors.count == 1
    assert decode_spans(_decode(payload))[0].name == "op"
