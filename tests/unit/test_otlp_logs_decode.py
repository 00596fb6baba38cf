"""The OTLP logs decoders: hostile bodies decode or raise OtlpDecodeError; GenAI events map
to one payload row per span, like the same events sent on the span."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.support.fuzz import examples
from watchkeep.ingest.decoded import DecodedEvent, DecodedExport, DecodedSpan, OtlpDecodeError
from watchkeep.ingest.normalise import SpanNormaliser
from watchkeep.ingest.otlp_logs import decode_logs_json, decode_logs_protobuf, payload_rows
from watchkeep.ingest.pricing import PriceTable

FUZZ = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRACE, SPAN = bytes.fromhex("5b8efff798038103d269b633813fc60c"), bytes.fromhex("eee19b7ec3c1b174")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_are_refused(body: bytes) -> None:
    try:
        logs = decode_logs_protobuf(body)
    except OtlpDecodeError:
        return
    assert logs.rejected <= logs.received
    payload_rows(1, logs, 0)


@FUZZ
@given(JSON_VALUES)
def test_any_json_decodes_or_is_refused(doc: Any) -> None:
    wrapped = {"resourceLogs": [{"scopeLogs": [{"logRecords": [doc]}]}]}
    for value in (doc, wrapped):
        with contextlib.suppress(OtlpDecodeError):
            payload_rows(1, decode_logs_json(json.dumps(value).encode()), 0)


def _record(
    request: ExportLogsServiceRequest, name: str, content: str, *, as_attribute: bool = False
) -> None:
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.trace_id, record.span_id = TRACE, SPAN
    if as_attribute:
        kv = record.attributes.add()
        kv.key, kv.value.string_value = "event.name", name
    else:
        record.event_name = name
    kv = record.body.kvlist_value.values.add()
    kv.key, kv.value.string_value = "content", content


def test_records_map_to_the_payload_span_events_give() -> None:
    request = ExportLogsServiceRequest()
    _record(request, "gen_ai.user.message", "hi")
    _record(request, "gen_ai.choice", "hello", as_attribute=True)
    _record(request, "app.log", "ignored")
    logs = decode_logs_protobuf(request.SerializeToString())
    assert (logs.received, logs.rejected) == (3, 0)
    (row,) = payload_rows(7, logs, 1).payloads
    span = DecodedSpan(
        TRACE.hex(), SPAN.hex(), None, "chat", 1, 0, 1, 0, None, {}, {}, None,
        [DecodedEvent(0, "gen_ai.user.message", {"content": "hi"}), DecodedEvent(0, "gen_ai.choice", {"content": "hello"})],
    )  # fmt: skip
    from_events = SpanNormaliser(PriceTable.load(None)).normalise(7, DecodedExport([span]), 1).payloads
    assert [row] == from_events
