"""OTLP logs (``/v1/logs`` and the gRPC LogsService): GenAI event records become span payloads.

OTel GenAI instrumentations emit prompts and completions as log records named
``gen_ai.*.message`` and ``gen_ai.choice`` that point at their span by trace and span id.
Their bodies become that span's input and output payload rows, the same rows that
message attributes or span events produce. Other records, and records without a span,
are accepted and counted but not stored: watchkeep is not a general log store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from watchkeep.ingest import otlp_json, otlp_proto
from watchkeep.ingest.decoded import OtlpDecodeError
from watchkeep.ingest.normalise import event_message, payload_text
from watchkeep.store.rows import WriteBatch

EVENT_NAME_ATTRIBUTE = "event.name"  # where SDKs before LogRecord.event_name put it


@dataclass(slots=True)
class DecodedLogs:
    """Each GenAI event record's span and message, and the count of every record."""

    received: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    # (trace id, span id) -> (side, message), in the order sent
    messages: list[tuple[tuple[str, str], tuple[str, Any]]] = field(default_factory=list)

    def add(self, trace_id: str, span_id: str, name: str, body: Any) -> None:
        """Count one record; keep its message when it is a GenAI event of a span."""
        self.received += 1
        if not trace_id or not span_id or body is None or body == {}:
            return  # no span to attach to, or nothing captured (content capture off)
        if len(trace_id) != 32 or len(span_id) != 16 or trace_id == "0" * 32 or span_id == "0" * 16:
            self.rejected += 1
            if len(self.reasons) < 5:
                self.reasons.append(f"invalid trace or span id {trace_id!r}/{span_id!r}")
            return
        message = event_message(name, body if isinstance(body, dict) else {"content": body})
        if message is not None:
            self.messages.append(((trace_id, span_id), message))


def decode_logs_protobuf(body: bytes) -> DecodedLogs:
    """Decode an ExportLogsServiceRequest."""
    request = otlp_proto.parse(ExportLogsServiceRequest(), body)
    logs = DecodedLogs()
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                name = rec.event_name
                if not name:
                    attrs = otlp_proto.attributes(rec.attributes)
                    name = str(attrs.get(EVENT_NAME_ATTRIBUTE) or "")
                logs.add(rec.trace_id.hex(), rec.span_id.hex(), name, otlp_proto.any_value(rec.body))
    return logs


def decode_logs_json(body: bytes) -> DecodedLogs:
    """Decode an OTLP/JSON ExportLogsServiceRequest."""
    j = otlp_json
    try:
        doc = j.obj(orjson.loads(body), "$")
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"malformed JSON: {exc}") from exc
    logs = DecodedLogs()
    for i, rl in enumerate(j.array(j.field(doc, "resourceLogs", "resource_logs"), "$.resourceLogs")):
        rpath = f"$.resourceLogs[{i}]"
        rl = j.obj(rl, rpath)
        for k, sl in enumerate(j.array(j.field(rl, "scopeLogs", "scope_logs"), f"{rpath}.scopeLogs")):
            spath = f"{rpath}.scopeLogs[{k}]"
            sl = j.obj(sl, spath)
            records = j.array(j.field(sl, "logRecords", "log_records"), f"{spath}.logRecords")
            for n, rec in enumerate(records):
                path = f"{spath}.logRecords[{n}]"
                rec = j.obj(rec, path)
                name = j.string(j.field(rec, "eventName", "event_name"), f"{path}.eventName")
                if not name:
                    attrs = j.attributes(rec.get("attributes"), f"{path}.attributes")
                    name = str(attrs.get(EVENT_NAME_ATTRIBUTE) or "")
                logs.add(
                    j.hex_id(j.field(rec, "traceId", "trace_id"), f"{path}.traceId"),
                    j.hex_id(j.field(rec, "spanId", "span_id"), f"{path}.spanId"),
                    name,
                    j.any_value(rec.get("body"), f"{path}.body"),
                )
    return logs


def payload_rows(project_id: int, logs: DecodedLogs, now_ns: int) -> WriteBatch:
    """One payload row per span: its input messages and its output messages, in order."""
    sides: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for key, (side, message) in logs.messages:
        sides.setdefault(key, {}).setdefault(side, []).append(message)
    batch = WriteBatch()
    for (trace_id, span_id), found in sides.items():
        inputs, outputs = found.get("input"), found.get("output")
        batch.payloads.append(
            (
                project_id,
                trace_id,
                span_id,
                None if inputs is None else payload_text(inputs),
                None if outputs is None else payload_text(outputs),
                now_ns,
            )
        )
    return batch
