"""Property tests of the OTLP decoders and the normaliser: hostile bodies never crash ingest.

Whatever a client sends, ``decode_protobuf`` / ``decode_json`` either decode it or raise
``OtlpDecodeError`` (a 400), and whatever decodes also normalises into rows that both
databases accept: the right number of columns, no NUL characters, 64-bit integers, text
within the column widths and valid JSON in the JSON columns.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import string
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import example, given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.fuzz import property_settings
from watchkeep import semconv
from watchkeep.devtools.synthetic_otlp import build_request
from watchkeep.ingest.decode_pool import PreparedExport, prepare
from watchkeep.ingest.decoded import DecodedExport, OtlpDecodeError
from watchkeep.ingest.otlp_json import decode_json
from watchkeep.ingest.otlp_proto import decode_protobuf
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.rows import JSON_SPAN_COLUMNS, PAYLOAD_COLUMNS, SPAN_COLUMNS, TRACE_COLUMNS
from watchkeep.store.tables import span_payloads, spans, traces

FUZZ = property_settings(150)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
NOW_NS = 1_750_000_000_000_000_000
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
HEX_ID = {"trace_id": re.compile(r"[0-9a-f]{32}"), "span_id": re.compile(r"[0-9a-f]{16}")}
SEMCONV_KEYS = sorted(v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str))
EVENT_NAMES = [k for k in SEMCONV_KEYS if k.startswith("gen_ai.") or "token" in k.lower()]


# --- invariants -----------------------------------------------------------------------


def _widths(table: Any) -> dict[str, int | None]:
    return {c.name: getattr(c.type, "length", None) for c in table.c}


SPAN_WIDTHS, PAYLOAD_WIDTHS, TRACE_WIDTHS = _widths(spans), _widths(span_payloads), _widths(traces)


def _assert_bindable(column: str, value: Any, width: int | None) -> None:
    """``value`` is something both SQLite and PostgreSQL accept for ``column``."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        assert INT64_MIN <= value <= INT64_MAX, f"{column}: {value} is outside the 64-bit range"
    elif isinstance(value, float):
        assert math.isfinite(value), f"{column}: {value} is not a finite number"
    elif isinstance(value, str):
        assert "\x00" not in value, f"{column}: NUL character in {value!r:.80}"
        value.encode("utf-8")  # no lone surrogates
        if width is not None:
            assert len(value) <= width, f"{column}: {len(value)} characters for a column of {width}"
    else:
        raise AssertionError(f"{column}: unexpected {type(value).__name__} {value!r:.80}")


def assert_storable(prepared: PreparedExport) -> None:
    """Every row of ``prepared`` fits the schema of both databases."""
    batch = prepared.batch
    for row in batch.spans:
        assert len(row) == len(SPAN_COLUMNS)
        values = dict(zip(SPAN_COLUMNS, row, strict=True))
        for column, value in values.items():
            _assert_bindable(column, value, SPAN_WIDTHS[column])
        for column in ("trace_id", "span_id"):
            assert HEX_ID[column].fullmatch(values[column]), f"{column} {values[column]!r} is not hex"
        parent = values["parent_span_id"]
        assert parent is None or HEX_ID["span_id"].fullmatch(parent), f"parent {parent!r} is not hex"
        assert 0 <= values["kind"] <= 5
        assert 0 <= values["status_code"] <= 2
        for column in JSON_SPAN_COLUMNS:
            text = values[column]
            if text is not None:
                assert "\\u0000" not in text, f"{column}: escaped NUL in {text!r:.80}"
                orjson.loads(text)
    for row in batch.payloads:
        assert len(row) == len(PAYLOAD_COLUMNS)
        for column, value in zip(PAYLOAD_COLUMNS, row, strict=True):
            _assert_bindable(column, value, PAYLOAD_WIDTHS[column])
    for trace in batch.traces.values():
        assert tuple(trace) == TRACE_COLUMNS
        for column, value in trace.items():
            _assert_bindable(column, value, TRACE_WIDTHS[column])
    assert len(batch.traces) <= len(batch.spans)


def check_body(body: bytes, encoding: Encoding) -> DecodedExport | None:
    """Decode ``body``: a DecodedExport or OtlpDecodeError only; what decodes must store."""
    decoder = decode_protobuf if encoding is Encoding.PROTOBUF else decode_json
    try:
        decoded = decoder(body)
    except OtlpDecodeError:
        with pytest.raises(OtlpDecodeError):
            prepare(1, body, encoding, NOW_NS, None)
        return None
    assert isinstance(decoded, DecodedExport)
    assert decoded.rejected >= 0
    prepared = prepare(1, body, encoding, NOW_NS, None)
    assert len(prepared.batch.spans) <= len(decoded.spans)
    assert_storable(prepared)
    return decoded


# --- (a) protobuf bytes -----------------------------------------------------------------

VALID_PROTOBUF, _ = build_request(6, rng=random.Random(7), start_ns=NOW_NS)


@FUZZ
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x0a\xff\xff\xff\xff\x0f")  # a length far past the end
@example(b"\x0a\x02\x12\x00" * 4)
def test_arbitrary_bytes_decode_or_fail_cleanly(body: bytes) -> None:
    check_body(body, Encoding.PROTOBUF)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID_PROTOBUF) - 1), st.integers(0, 255), st.sampled_from("sid")),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, len(VALID_PROTOBUF)),
)
def test_mutated_protobuf_exports_decode_or_fail_cleanly(edits: list[tuple[int, int, str]], cut: int) -> None:
    body = bytearray(VALID_PROTOBUF)
    for position, byte, how in edits:
        position = min(position, len(body) - 1)
        if how == "s":
            body[position] = byte
        elif how == "i":
            body.insert(position, byte)
        elif len(body) > 1:
            del body[position]
    check_body(bytes(body[: max(cut, len(body) // 2)]), Encoding.PROTOBUF)


# --- (b) JSON documents -------------------------------------------------------------------

_chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from("\x00\ufffd é✓"))
text_with_nul = st.text(alphabet=_chars, max_size=40)
hostile_text = st.one_of(
    text_with_nul,
    text_with_nul,
    st.text(alphabet=st.sampled_from("\ud800\udfffa\x00"), max_size=3),  # lone surrogates, escaped
)
json_ish = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 80), 1 << 80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(hostile_text, inner, max_size=5),
    max_leaves=30,
)


def dump(doc: Any) -> bytes:
    """JSON bytes of ``doc``; NaN/Infinity and lone surrogates (escaped) are kept as sent."""
    return json.dumps(doc, allow_nan=True).encode("utf-8")


@FUZZ
@given(json_ish)
@example(float("nan"))
@example({"resourceSpans": [{"scopeSpans": [{"spans": [None, 1, "x", []]}]}]})
def test_arbitrary_json_values_decode_or_fail_cleanly(doc: Any) -> None:
    check_body(dump(doc), Encoding.JSON)


@FUZZ
@given(st.dictionaries(st.sampled_from(["resourceSpans", "resource_spans", "x"]), json_ish, max_size=2))
def test_arbitrary_json_under_otlp_keys_decodes_or_fails_cleanly(doc: dict[str, Any]) -> None:
    check_body(dump(doc), Encoding.JSON)


HEX = "0123456789abcdefABCDEF"


def _hex_text(length: int) -> st.SearchStrategy[str]:
    """A valid non-zero id in upper, lower or mixed case."""
    raw = st.binary(min_size=length // 2, max_size=length // 2).filter(any).map(bytes.hex)
    return st.tuples(raw, st.sampled_from([str.lower, str.upper, str.swapcase])).map(lambda p: p[1](p[0]))


def mostly(valid: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually ``valid``, now and then one of ``odd``: most documents get deep before they fail."""
    return st.sampled_from([True] * 15 + [False]).flatmap(lambda ok: valid if ok else st.one_of(*odd))


def ids(length: int) -> st.SearchStrategy[Any]:
    """Mostly valid ids, some of the wrong length, case, characters or type."""
    return mostly(
        _hex_text(length),
        st.just("0" * length),
        st.text(alphabet=HEX + " \t\n-xg\x00", min_size=length - 2, max_size=length + 2),
        st.text(alphabet=HEX, max_size=length + 4),
        st.none(),
        st.integers(),
    )


timestamps = mostly(
    st.one_of(st.integers(0, 1 << 62), st.integers(0, 1 << 62).map(str)),
    st.integers(0, (1 << 64) + 5),
    st.integers(-(1 << 64), 1 << 70),
    st.integers(0, 1 << 64).map(str),
    st.sampled_from(["", " 12", "1e9", "0x10", "1_000", "-1", str(1 << 64), "٣"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
)
key_text = st.one_of(
    st.sampled_from(SEMCONV_KEYS),
    st.builds(
        lambda prefix, index, field: f"{prefix}{index}.{field}",
        st.sampled_from(
            ["gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages."]
        ),
        st.one_of(st.integers(0, 5).map(str), st.sampled_from(["x", "", "-1", "²", "٣", "9" * 5000])),
        st.sampled_from(["role", "content", "message.role", "message.content"]),
    ),
    mostly(text_with_nul, hostile_text),
)
scalar_values = st.one_of(
    st.builds(
        lambda k, v: {k: v},
        st.sampled_from(["stringValue", "string_value"]),
        mostly(text_with_nul, hostile_text),
    ),
    st.builds(lambda v: {"stringValue": v}, st.sampled_from(["[1,2]", '{"model": "m"}', "[oops", "a, b"])),
    st.builds(lambda v: {"boolValue": v}, mostly(st.booleans(), st.integers(0, 1), st.none())),
    st.builds(
        lambda v: {"intValue": v},
        mostly(
            st.one_of(st.integers(INT64_MIN, INT64_MAX), st.integers(INT64_MIN, INT64_MAX).map(str)),
            st.integers(1 << 63, 1 << 100).map(str),
            st.integers(-(1 << 100), -(1 << 63) - 1).map(str),
            st.sampled_from(["", "1.5", "nope", True]),
        ),
    ),
    st.builds(
        lambda v: {"doubleValue": v},
        mostly(
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "x", True]),
        ),
    ),
    st.builds(lambda v: {"bytesValue": base64.b64encode(v).decode()}, st.binary(max_size=16)),
    st.just({}),
    st.none(),
)


def _kv(value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"key": key_text, "value": value})


any_values = st.recursive(
    scalar_values,
    lambda inner: st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=4)),
        st.builds(lambda vs: {"kvlistValue": {"values": vs}}, st.lists(_kv(inner), max_size=4)),
        st.builds(lambda vs: {"array_value": {"values": vs}}, st.lists(inner, max_size=2)),
    ),
    max_leaves=12,
)
attribute_lists = st.lists(_kv(any_values), max_size=8)


@st.composite
def deep_values(draw: st.DrawFn) -> dict[str, Any]:
    """An AnyValue nested around the decoders' depth limit."""
    value: dict[str, Any] = draw(scalar_values.filter(lambda v: v is not None))
    for _ in range(draw(st.integers(25, 40))):
        if draw(st.booleans()):
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def _plus(start: Any, delta: int) -> Any:
    """``start`` + ``delta`` in the same JSON type, or ``start`` itself when it is not a number."""
    try:
        end = int(start) + delta
    except (TypeError, ValueError):
        return start
    return str(end) if isinstance(start, str) else end


@st.composite
def json_spans(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(timestamps)
    span: dict[str, Any] = {
        "traceId": draw(ids(32)),
        "spanId": draw(ids(16)),
        "startTimeUnixNano": start,
        "endTimeUnixNano": draw(mostly(st.integers(0, 10**12).map(lambda d: _plus(start, d)), timestamps)),
        "attributes": draw(st.one_of(attribute_lists, st.lists(_kv(deep_values()), max_size=1))),
    }
    optional = {
        "parentSpanId": st.one_of(ids(16), st.just("")),
        "name": mostly(
            mostly(text_with_nul, hostile_text), st.text(min_size=1100, max_size=1200), st.integers()
        ),
        "kind": mostly(
            st.one_of(st.integers(-3, 9), st.integers(), st.just("SPAN_KIND_CLIENT")), st.just("x")
        ),
        "status": st.fixed_dictionaries(
            {},
            optional={
                "code": mostly(
                    st.one_of(st.integers(), st.sampled_from(["STATUS_CODE_ERROR", "2"])), st.just("x")
                ),
                "message": mostly(mostly(text_with_nul, hostile_text), st.text(min_size=5000, max_size=5000)),
            },
        ),
        "events": st.lists(
            st.fixed_dictionaries(
                {
                    "timeUnixNano": timestamps,
                    "name": st.one_of(st.sampled_from(EVENT_NAMES), mostly(text_with_nul, hostile_text)),
                    "attributes": attribute_lists,
                }
            ),
            max_size=3,
        ),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        span[name] = draw(optional[name])
    return span


@st.composite
def otlp_documents(draw: st.DrawFn) -> dict[str, Any]:
    scope_spans = st.fixed_dictionaries(
        {"spans": st.lists(json_spans(), min_size=1, max_size=3)},
        optional={
            "scope": st.fixed_dictionaries(
                {}, optional={"name": st.one_of(mostly(text_with_nul, hostile_text), st.none())}
            )
        },
    )
    resource_spans = st.fixed_dictionaries(
        {"scopeSpans": st.lists(scope_spans, min_size=1, max_size=2)},
        optional={"resource": st.fixed_dictionaries({"attributes": attribute_lists})},
    )
    return {"resourceSpans": draw(st.lists(resource_spans, min_size=1, max_size=2))}


def single_span(attributes: list[dict[str, Any]], trace_id: str = TRACE_ID) -> dict[str, Any]:
    span = {"traceId": trace_id, "spanId": SPAN_ID, "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "attributes": attributes}]}]}]}


@property_settings(100)
@given(otlp_documents())
@example(single_span([{"key": "x", "value": {"intValue": str(1 << 70)}}]))
@example(single_span([{"key": "gen_ai.prompt.\u00b2.content", "value": {"stringValue": "hi"}}]))
@example(single_span([{"key": "gen_ai.prompt." + "9" * 5000 + ".role", "value": {"stringValue": "user"}}]))
@example(single_span([], trace_id="0123456789abcdef0123456789ab  cd"))
@example(single_span([{"key": "a\x00", "value": {"stringValue": "b\x00"}}]))
def test_near_valid_otlp_json_decodes_or_fails_cleanly(doc: dict[str, Any]) -> None:
    check_body(dump(doc), Encoding.JSON)


@pytest.mark.parametrize(
    "trace_id",
    [
        "0123456789abcdef0123456789ab  cd",
        " 0123456789abcdef0123456789abcd ",
        "0123456789abcdef\t\t23456789abcdef",
    ],
)
def test_json_ids_with_whitespace_are_not_stored_as_ids(trace_id: str) -> None:
    """bytes.fromhex skips whitespace; such an id must not pass as a 32-digit hex id."""
    try:
        decoded = decode_json(dump(single_span([], trace_id=trace_id)))
    except OtlpDecodeError:
        return
    assert [s.trace_id for s in decoded.spans] == []
    assert decoded.rejected == 1


# --- (d) protobuf and JSON agree -------------------------------------------------------------

proto_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
proto_scalars = st.one_of(
    st.builds(lambda v: AnyValue(string_value=v), proto_text),
    st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: AnyValue(int_value=v), st.integers(INT64_MIN, INT64_MAX)),
    st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=False)),
    st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=12)),
    st.just(AnyValue()),
)


def _proto_kvs(value: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[list[KeyValue]]:
    pair = st.builds(
        lambda k, v: KeyValue(key=k, value=v), st.one_of(st.sampled_from(SEMCONV_KEYS), proto_text), value
    )
    return st.lists(pair, max_size=6, unique_by=lambda kv: kv.key)


proto_values = st.recursive(
    proto_scalars,
    lambda inner: st.one_of(
        st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=3)),
        st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs)), _proto_kvs(inner)),
    ),
    max_leaves=10,
)
uint64 = st.integers(0, (1 << 64) - 1)


@st.composite
def proto_spans(draw: st.DrawFn) -> Span:
    start = draw(uint64)
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16).filter(any)),
        span_id=draw(st.binary(min_size=8, max_size=8).filter(any)),
        parent_span_id=draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8))),
        name=draw(proto_text),
        kind=draw(st.integers(0, 5)),
        start_time_unix_nano=start,
        end_time_unix_nano=draw(st.integers(start, (1 << 64) - 1)),
        status=Status(code=draw(st.integers(0, 2)), message=draw(proto_text)),
        attributes=draw(_proto_kvs(proto_values)),
    )
    for _ in range(draw(st.integers(0, 2))):
        event = span.events.add(time_unix_nano=draw(uint64), name=draw(proto_text))
        event.attributes.extend(draw(_proto_kvs(proto_values)))
    return span


@st.composite
def proto_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(draw(_proto_kvs(proto_values)))
        for _ in range(draw(st.integers(1, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name = draw(proto_text)
            ss.spans.extend(draw(st.lists(proto_spans(), min_size=1, max_size=3)))
    return request


def otlp_json_of(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON per the spec: the protobuf JSON mapping with ids as hex instead of base64."""
    doc = json_format.MessageToDict(request)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex().upper()  # hex is case-insensitive
    return dump(doc)


@property_settings(60)
@given(proto_requests())
def test_protobuf_and_json_encodings_decode_alike(request: ExportTraceServiceRequest) -> None:
    body = request.SerializeToString()
    from_proto = decode_protobuf(body)
    from_json = decode_json(otlp_json_of(request))
    assert from_proto.rejected == from_json.rejected == 0
    sent = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [s.span_id for s in from_proto.spans] == [s.span_id.hex() for s in sent]
    for decoded, original in zip(from_proto.spans, sent, strict=True):
        assert decoded.trace_id == original.trace_id.hex()
        assert re.fullmatch(r"[0-9a-f]{32}", decoded.trace_id)
        assert decoded.parent_span_id == (original.parent_span_id.hex() or None)
        assert (decoded.start_time_unix_nano, decoded.end_time_unix_nano) == (
            original.start_time_unix_nano,
            original.end_time_unix_nano,
        )
        assert decoded.name == original.name
        assert len(decoded.attributes) == len(original.attributes)
    assert from_json.spans == from_proto.spans
    check_body(body, Encoding.PROTOBUF)


def test_protobuf_attribute_values_become_plain_python() -> None:
    nested = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(int_value=-5))]))
    attrs = [
        KeyValue(key="s", value=AnyValue(string_value="é\x00")),
        KeyValue(key="b", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(key="a", value=AnyValue(array_value=ArrayValue(values=[AnyValue(bool_value=True), nested]))),
        KeyValue(key="d", value=AnyValue(double_value=float("inf"))),
        KeyValue(key="none", value=AnyValue()),
    ]
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=bytes.fromhex(TRACE_ID),
            span_id=bytes.fromhex(SPAN_ID),
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
    )
    span.attributes.extend(attrs)
    decoded = check_body(request.SerializeToString(), Encoding.PROTOBUF)
    assert decoded is not None
    assert decoded.spans[0].attributes == {
        "s": "é\x00",
        "b": base64.b64encode(b"\x00\xff").decode(),
        "a": [True, {"k": -5}],
        "d": float("inf"),
        "none": None,
    }


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    size, length = bytearray(), len(payload)
    while True:
        size.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            return bytes([number << 3 | 2]) + bytes(size) + payload


@pytest.mark.parametrize("depth", [30, 40, 90, 200])
def test_deeply_nested_protobuf_values_are_refused_or_kept(depth: int) -> None:
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(depth):  # by hand: the protobuf classes refuse to build what is too deep
        value = _field(5, _field(1, value))  # AnyValue.array_value = ArrayValue(values=[value])
    span = Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(SPAN_ID), end_time_unix_nano=2)
    span_bytes = span.SerializeToString() + _field(9, _field(1, b"deep") + _field(2, value))
    body = _field(1, _field(2, _field(2, span_bytes)))  # resource_spans.scope_spans.spans
    decoded = check_body(body, Encoding.PROTOBUF)
    assert (decoded is None) == (depth > 32)
    if decoded is not None:
        leaf: Any = decoded.spans[0].attributes["deep"]
        for _ in range(depth):
            (leaf,) = leaf
        assert leaf == "leaf"


@pytest.mark.parametrize("alphabet", [string.ascii_letters, "\x00\ud800"])
def test_garbage_scope_and_names_survive_json(alphabet: str) -> None:
    doc = single_span([{"key": alphabet, "value": {"stringValue": alphabet * 3}}])
    doc["resourceSpans"][0]["scopeSpans"][0]["scope"] = {"name": alphabet}
    check_body(dump(doc), Encoding.JSON)
