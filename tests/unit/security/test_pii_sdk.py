"""Client-side PII redaction: ``wk.init(redact=True)`` masks before anything leaves the process."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from watchkeep.sdk.config import load_config
from watchkeep.sdk.encode import Encoder
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.redact import PiiRedactor
from watchkeep.sdk.spans import SpanRecord
from watchkeep.sdk.testing import decode_spans


def _encode_one(redact: object) -> dict[str, object]:
    config = load_config({"api_key": "k", "redact": redact}, environ={})
    record = SpanRecord("op", SpanKind.CLIENT, (1 << 127) | 5, (1 << 63) | 7, 0, True, None)
    record.end_ns = record.start_ns + 1500
    record.attributes.update({"note": "card 4111 1111 1111 1111", "session.id": "bob@example.com"})
    record.set_payload(
        "gen_ai.input.messages", [{"role": "user", "content": "I am bob@example.com"}], messages=True
    )
    payload, _ = Encoder(config, ErrorLog()).encode([record])
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    (span,) = decode_spans(request)
    return dict(span.attributes)


def test_redact_true_installs_the_pii_redactor() -> None:
    assert isinstance(load_config({"redact": True}, environ={}).redact, PiiRedactor)
    assert load_config({"redact": False}, environ={}).redact is None
    attributes = _encode_one(True)
    assert attributes["note"] == "card [CARD]"
    assert attributes["session.id"] == "bob@example.com"  # identifiers are not content
    assert "[EMAIL]" in str(attributes["gen_ai.input.messages"])
    assert "bob@example.com" not in str(attributes["gen_ai.input.messages"])


def test_without_redaction_the_values_are_sent_as_given() -> None:
    attributes = _encode_one(None)
    assert attributes["note"] == "card 4111 1111 1111 1111"


def test_a_configured_redactor_hashes_with_its_key() -> None:
    attributes = _encode_one(PiiRedactor({"card": "hash"}, hash_key=b"k"))
    note = str(attributes["note"])
    assert note.startswith("card [CARD:")
    assert len(note) == len("card [CARD:12345678]")
