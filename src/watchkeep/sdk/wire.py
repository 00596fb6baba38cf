"""OTLP trace protobuf, written directly in the wire format.

Building ``opentelemetry.proto`` message objects costs the export thread about 40 µs
per span (one Python object per attribute, copied into its parent); writing the bytes
here costs a fraction of that, and attributes that repeat across spans (environment,
model, user...) are encoded once and reused. The output is a standard
``ExportTraceServiceRequest``; the tests parse it back with the official classes.
Field numbers are those of opentelemetry-proto ``trace/v1`` and ``common/v1``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_SMALL = [bytes([n]) for n in range(128)]
_UINT64 = (1 << 64) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
CACHE_LIMIT = 8192
CACHE_MAX_TEXT = 256


def varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    value &= _UINT64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is the one-byte or two-byte key)."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 0x80 else varint(size)) + payload


def text(value: str) -> bytes:
    # Lone surrogates would make invalid UTF-8 and the server would reject the batch.
    return value.encode("utf-8", "replace")


# --- common/v1 ---------------------------------------------------------------------
def any_value(value: Any) -> bytes:
    """An ``AnyValue``; types OTLP cannot carry become strings."""
    if isinstance(value, str):
        return field(b"\x0a", text(value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return b"\x18" + varint(value)
        return field(b"\x0a", text(str(value)))
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, tuple | list):
        return field(b"\x2a", b"".join(field(b"\x0a", any_value(v)) for v in value))
    if isinstance(value, bytes):
        return field(b"\x3a", value)
    if isinstance(value, Mapping):
        return field(b"\x32", b"".join(field(b"\x0a", key_value(str(k), v)) for k, v in value.items()))
    return field(b"\x0a", text(str(value)))


def key_value(key: str, value: Any) -> bytes:
    return field(b"\x0a", text(key)) + field(b"\x12", any_value(value))


_CACHEABLE = frozenset({bool, int, float, tuple})


class AttributeWriter:
    """Encodes attribute maps, reusing the bytes of pairs seen before.

    The cache is bounded (cleared when full) and skips long strings, so payloads such
    as captured inputs are never held. Safe to share between threads (the GIL makes
    each dict operation atomic; a race only encodes a pair twice).
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, str, Any, type], bytes] = {}

    def fields(self, tag: bytes, attributes: Mapping[str, Any]) -> bytes:
        """Every attribute as a repeated ``KeyValue`` field with the given tag."""
        cache = self._cache
        out = []
        for key, value in attributes.items():
            kind = type(value)
            if (kind is str and len(value) <= CACHE_MAX_TEXT) or kind in _CACHEABLE:
                cache_key = (tag, key, value, kind)
                try:
                    encoded = cache.get(cache_key)
                except TypeError:  # a tuple holding something unhashable
                    out.append(field(tag, key_value(key, value)))
                    continue
                if encoded is None:
                    if len(cache) >= CACHE_LIMIT:
                        cache.clear()
                    encoded = cache[cache_key] = field(tag, key_value(key, value))
                out.append(encoded)
            else:
                out.append(field(tag, key_value(key, value)))
        return b"".join(out)


def scope(name: str, version: str) -> bytes:
    out = field(b"\x0a", text(name))
    return out + field(b"\x12", text(version)) if version else out


# --- trace/v1 ----------------------------------------------------------------------
KIND_FIELD = b"\x30"
RESOURCE_ATTRIBUTE = b"\x0a"
SPAN_ATTRIBUTE = b"\x4a"
EVENT_ATTRIBUTE = b"\x1a"
LINK_ATTRIBUTE = b"\x22"


def span(
    *,
    trace_id: int,
    span_id: int,
    parent_id: int,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: bytes,
    events: Iterable[bytes],
    links: Iterable[bytes],
    status_code: int,
    status_message: str,
    flags: int,
    trace_state: str = "",
) -> bytes:
    """One ``Span`` message; ``kind`` is the OTLP value (INTERNAL = 1)."""
    parts = [
        b"\x0a\x10",
        trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        span_id.to_bytes(8, "big"),
    ]
    if trace_state:
        parts.append(field(b"\x1a", text(trace_state)))
    if parent_id:
        parts += (b"\x22\x08", parent_id.to_bytes(8, "big"))
    parts += (
        field(b"\x2a", text(name)),
        KIND_FIELD,
        _SMALL[kind],
        b"\x39",
        _FIXED64(start_ns),
        b"\x41",
        _FIXED64(end_ns),
        attributes,
    )
    parts.extend(field(b"\x5a", e) for e in events)
    parts.extend(field(b"\x6a", link) for link in links)
    if status_code or status_message:
        status = field(b"\x12", text(status_message)) if status_message else b""
        parts.append(field(b"\x7a", status + b"\x18" + _SMALL[status_code]))
    parts += (b"\x85\x01", _FIXED32(flags))
    return b"".join(parts)


def event(name: str, time_ns: int, attributes: bytes) -> bytes:
    return b"\x09" + _FIXED64(time_ns) + field(b"\x12", text(name)) + attributes


def link(trace_id: int, span_id: int, attributes: bytes, flags: int) -> bytes:
    return (
        b"\x0a\x10"
        + trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + span_id.to_bytes(8, "big")
        + attributes
        + b"\x35"
        + _FIXED32(flags)
    )


def scope_spans(scope_bytes: bytes, spans: Iterable[bytes]) -> bytes:
    return field(b"\x0a", scope_bytes) + b"".join(field(b"\x12", s) for s in spans)


def resource_spans(resource_bytes: bytes, scopes: Iterable[bytes]) -> bytes:
    return field(b"\x0a", resource_bytes) + b"".join(field(b"\x12", s) for s in scopes)


def export_request(resources: Iterable[bytes]) -> bytes:
    """An ``ExportTraceServiceRequest`` from encoded ``ResourceSpans``."""
    return b"".join(field(b"\x0a", r) for r in resources)
