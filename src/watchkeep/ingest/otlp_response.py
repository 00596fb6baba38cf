"""The OTLP Export*ServiceResponse bodies, per signal and encoding, in one place.

An export answers with an empty response, or with ``partial_success`` (how many spans
or log records were rejected, and why) when some were invalid.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from watchkeep.ingest.service_types import Encoding, Signal

# Per signal: the protobuf response type, then its rejected-count field in protobuf and in JSON.
_RESPONSES: dict[Signal, tuple[type[Message], str, str]] = {
    Signal.TRACES: (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    Signal.LOGS: (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
}


def encode_response(signal: Signal, encoding: Encoding, rejected: int, message: str) -> bytes:
    """The response to an export of ``signal`` in ``encoding``, with partial success when
    ``rejected`` items were refused for ``message``."""
    response_type, proto_field, json_field = _RESPONSES[signal]
    if encoding is Encoding.PROTOBUF:
        response: Any = response_type()
        if rejected:
            partial = response.partial_success
            setattr(partial, proto_field, rejected)
            partial.error_message = message
        return bytes(response.SerializeToString())
    if not rejected:
        return b"{}"
    return orjson.dumps({"partialSuccess": {json_field: str(rejected), "errorMessage": message}})
