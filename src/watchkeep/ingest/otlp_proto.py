"""OTLP/HTTP protobuf decoding (``application/x-protobuf``)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from watchkeep.ingest.decoded import (
    Attributes,
    DecodedEvent,
    DecodedExport,
    DecodedSpan,
    OtlpDecodeError,
    check_ids,
)

_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value"})
_MAX_DEPTH = 32
M = TypeVar("M", bound=Message)


def _compiled_decoder() -> Callable[[bytes], DecodedExport | None] | None:
    """The compiled wire decoder, built by hatch_build.py when Cython and a C compiler were
    there (ADR 0031); None in a pure-Python install."""
    try:
        from watchkeep.ingest._otlp_wire import decode_traces
    except ImportError:  # pragma: no cover - a pure-Python install
        return None
    return decode_traces


decode_traces = _compiled_decoder()
# Whether decode_protobuf tries the compiled wire decoder first; tests turn it off to
# compare with the upb path.
USE_COMPILED = decode_traces is not None


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """The Python value of an OTLP AnyValue (bytes become base64 text)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if depth > _MAX_DEPTH:
        raise OtlpDecodeError("attribute value nested too deeply")
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def attributes(kvs: Any) -> Attributes:
    """A dict from a repeated KeyValue field."""
    out: Attributes = {}
    kv: KeyValue
    for kv in kvs:
        value = kv.value
        # This loop runs for every attribute of every span: most values are non-empty
        # strings, and one read of ``string_value`` costs less than ``WhichOneof`` + getattr.
        text = value.string_value
        if text:
            out[kv.key] = text
            continue
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in _SCALARS else any_value(value)
    return out


def parse(request: M, body: bytes) -> M:
    """``request`` read from ``body``; OtlpDecodeError when it is not that protobuf message."""
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"malformed protobuf {type(request).__name__}: {exc}") from exc
    return request


def decode_protobuf(body: bytes) -> DecodedExport:
    """Decode an ExportTraceServiceRequest; invalid spans are counted, not fatal.

    The compiled wire decoder answers what it is sure of (about a fifth of upb's CPU a
    span); for anything else (malformed input included) it returns None and upb decides.
    """
    if USE_COMPILED and decode_traces is not None:
        decoded = decode_traces(body)
        if decoded is not None:
            return decoded
    return decode_protobuf_upb(body)


def decode_protobuf_upb(body: bytes) -> DecodedExport:
    """``decode_protobuf`` through upb's message classes: the reference the fast path mirrors."""
    request = parse(ExportTraceServiceRequest(), body)
    export = DecodedExport()
    spans = export.spans
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for sp in ss.spans:
                # Each read of a upb field allocates: read every field once.
                trace_id = sp.trace_id.hex()
                span_id = sp.span_id.hex()
                parent = sp.parent_span_id.hex() or None
                if not check_ids(export, trace_id, span_id, parent):
                    continue
                start, end = sp.start_time_unix_nano, sp.end_time_unix_nano
                if end < start:
                    export.reject(f"span {span_id} ends before it starts")
                    continue
                code: int = 0
                message: str | None = None
                if sp.HasField("status"):  # most spans have none: skip making its wrapper
                    status = sp.status
                    code, message = status.code, status.message or None
                events = sp.events
                spans.append(
                    DecodedSpan(
                        trace_id,
                        span_id,
                        parent,
                        sp.name,
                        sp.kind,
                        start,
                        end,
                        code,
                        message,
                        attributes(sp.attributes),
                        resource,
                        scope,
                        [DecodedEvent(e.time_unix_nano, e.name, attributes(e.attributes)) for e in events]
                        if events
                        else [],
                    )
                )
    return export
