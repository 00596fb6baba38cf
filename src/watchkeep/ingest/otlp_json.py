"""OTLP/HTTP JSON decoding (``application/json``).

OTLP/JSON differs from the generic protobuf JSON mapping: trace and span ids are hex
strings, enums are integers and 64-bit integers may arrive as decimal strings. Field
names are lowerCamelCase; the original snake_case names are accepted too, as protobuf
JSON parsers do. Every type error names the path of the offending field.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from watchkeep.ingest.decoded import (
    Attributes,
    DecodedEvent,
    DecodedExport,
    DecodedSpan,
    OtlpDecodeError,
    check_ids,
)

_MAX_DEPTH = 32
_HEX = re.compile(r"[0-9a-f]*")
_INT64 = range(-(1 << 63), 1 << 63)
_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _obj(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{path}: expected an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{path}: expected an array")
    return value


def _int(value: Any, path: str, names: dict[str, int] | None = None) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise OtlpDecodeError(f"{path}: expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if names is not None and value in names:
            return names[value]
        if value.isascii():
            try:
                return int(value)
            except ValueError:
                pass
    raise OtlpDecodeError(f"{path}: expected an integer, got {value!r:.40}")


def _uint64(value: Any, path: str) -> int:
    number = _int(value, path)
    if not 0 <= number < 1 << 64:
        raise OtlpDecodeError(f"{path}: out of range for a 64-bit unsigned integer")
    return number


def _str(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OtlpDecodeError(f"{path}: expected a string")
    return value


def _hex_id(value: Any, path: str) -> str:
    text = _str(value, path).lower()
    if not _HEX.fullmatch(text):  # bytes.fromhex would accept spaces
        raise OtlpDecodeError(f"{path}: expected a hex string")
    return text


def any_value(value: Any, path: str, depth: int = 0) -> Any:
    """The Python value of an OTLP/JSON AnyValue object."""
    if depth > _MAX_DEPTH:
        raise OtlpDecodeError(f"{path}: nested too deeply")
    value = _obj(value, path)
    for key in ("stringValue", "string_value"):
        if key in value:
            return _str(value[key], f"{path}.{key}")
    for key in ("boolValue", "bool_value"):
        if key in value:
            if not isinstance(value[key], bool):
                raise OtlpDecodeError(f"{path}.{key}: expected a boolean")
            return value[key]
    for key in ("intValue", "int_value"):
        if key in value:
            number = _int(value[key], f"{path}.{key}")
            if number not in _INT64:
                raise OtlpDecodeError(f"{path}.{key}: out of range for a 64-bit integer")
            return number
    for key in ("doubleValue", "double_value"):
        if key in value:
            v = value[key]
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise OtlpDecodeError(f"{path}.{key}: expected a number")
            try:
                return float(v)
            except ValueError:
                raise OtlpDecodeError(f"{path}.{key}: expected a number") from None
    array = _get(value, "arrayValue", "array_value")
    if array is not None:
        items = _list(_obj(array, path).get("values"), f"{path}.arrayValue.values")
        return [any_value(v, f"{path}.arrayValue.values[{i}]", depth + 1) for i, v in enumerate(items)]
    kvlist = _get(value, "kvlistValue", "kvlist_value")
    if kvlist is not None:
        kvs = _obj(kvlist, path).get("values")
        return attributes(kvs, f"{path}.kvlistValue.values", depth + 1)
    if "bytesValue" in value or "bytes_value" in value:
        return _str(_get(value, "bytesValue", "bytes_value"), f"{path}.bytesValue")
    return None


def attributes(kvs: Any, path: str, depth: int = 0) -> Attributes:
    """A dict from an OTLP/JSON list of ``{"key": ..., "value": {...}}``."""
    out: Attributes = {}
    fast = depth <= _MAX_DEPTH
    for i, kv in enumerate(_list(kvs, path)):
        # Fast path for the usual string attribute: the error paths below are f-strings,
        # too dear to build for every attribute that turns out fine.
        if fast and type(kv) is dict:
            key, value = kv.get("key"), kv.get("value")
            if type(key) is str and type(value) is dict:
                text = value.get("stringValue")
                if type(text) is str:
                    out[key] = text
                    continue
        kv = _obj(kv, f"{path}[{i}]")
        key = _str(kv.get("key"), f"{path}[{i}].key")
        out[key] = any_value(kv.get("value"), f"{path}[{i}].value", depth)
    return out


def _span(raw: Any, path: str, resource: Attributes, scope: str | None, export: DecodedExport) -> None:
    sp = _obj(raw, path)
    trace_id = _hex_id(_get(sp, "traceId", "trace_id"), f"{path}.traceId")
    span_id = _hex_id(_get(sp, "spanId", "span_id"), f"{path}.spanId")
    parent = _hex_id(_get(sp, "parentSpanId", "parent_span_id"), f"{path}.parentSpanId") or None
    if not check_ids(export, trace_id, span_id, parent):
        return
    start = _uint64(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), f"{path}.startTimeUnixNano")
    end = _uint64(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), f"{path}.endTimeUnixNano")
    if end < start:
        export.reject(f"span {span_id} ends before it starts")
        return
    status = _obj(sp.get("status"), f"{path}.status")
    events = []
    for j, ev in enumerate(_list(sp.get("events"), f"{path}.events")):
        ev = _obj(ev, f"{path}.events[{j}]")
        events.append(
            DecodedEvent(
                _uint64(_get(ev, "timeUnixNano", "time_unix_nano"), f"{path}.events[{j}].timeUnixNano"),
                _str(ev.get("name"), f"{path}.events[{j}].name"),
                attributes(ev.get("attributes"), f"{path}.events[{j}].attributes"),
            )
        )
    export.spans.append(
        DecodedSpan(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=_str(sp.get("name"), f"{path}.name"),
            kind=_int(sp.get("kind"), f"{path}.kind", _SPAN_KINDS),
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            status_code=_int(status.get("code"), f"{path}.status.code", _STATUS_CODES),
            status_message=_str(status.get("message"), f"{path}.status.message") or None,
            attributes=attributes(sp.get("attributes"), f"{path}.attributes"),
            resource=resource,
            scope_name=scope,
            events=events,
        )
    )


def decode_json(body: bytes) -> DecodedExport:
    """Decode an OTLP/JSON ExportTraceServiceRequest."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"malformed JSON: {exc}") from exc
    doc = _obj(doc, "$")
    export = DecodedExport()
    for i, rs in enumerate(_list(_get(doc, "resourceSpans", "resource_spans"), "$.resourceSpans")):
        rpath = f"$.resourceSpans[{i}]"
        rs = _obj(rs, rpath)
        resource_obj = _obj(rs.get("resource"), f"{rpath}.resource")
        resource = attributes(resource_obj.get("attributes"), f"{rpath}.resource.attributes")
        for j, ss in enumerate(_list(_get(rs, "scopeSpans", "scope_spans"), f"{rpath}.scopeSpans")):
            spath = f"{rpath}.scopeSpans[{j}]"
            ss = _obj(ss, spath)
            scope = _str(_obj(ss.get("scope"), f"{spath}.scope").get("name"), f"{spath}.scope.name")
            for k, sp in enumerate(_list(ss.get("spans"), f"{spath}.spans")):
                _span(sp, f"{spath}.spans[{k}]", resource, scope or None, export)
    return export


# The field readers, for the other OTLP/JSON signals (logs).
field, obj, array, string, hex_id = _get, _obj, _list, _str, _hex_id
