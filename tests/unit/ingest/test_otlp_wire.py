"""The compiled OTLP wire decoder (``_otlp_wire``, ADR 0031) against the upb path.

Whatever it returns must equal what ``decode_protobuf_upb`` returns for the same bytes,
down to value types, dict order and which spans share a resource dict; where it is not
sure it returns None (the caller then uses upb), and it never answers a body upb refuses.
"""

from __future__ import annotations

import random
from typing import Any, TypeVar

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from tests.support.fuzz import property_settings

from watchkeep.devtools.synthetic_otlp import build_llm_request, build_request
from watchkeep.ingest import otlp_proto
from watchkeep.ingest._otlp_wire import decode_traces  # absent module: fail, never skip
from watchkeep.ingest.decoded import DecodedExport, OtlpDecodeError

PROPERTY = property_settings(100)
MessageT = TypeVar("MessageT", bound=Message)
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
UINT64 = st.integers(0, (1 << 64) - 1)
KEYS = st.sampled_from(["gen_ai.system", "llm.model", "k", "", "ключ", "a.b.c"]) | st.text(max_size=8)


# --- comparing the two decoders -------------------------------------------------------------


def _shape(export: DecodedExport) -> list[int]:
    """Which spans share one resource dict: the index of the first span with the same one."""
    first: dict[int, int] = {}
    return [first.setdefault(id(span.resource), i) for i, span in enumerate(export.spans)]


def upb_outcome(body: bytes) -> DecodedExport | OtlpDecodeError:
    try:
        return otlp_proto.decode_protobuf_upb(body)
    except OtlpDecodeError as exc:
        return exc


def assert_same(fast: DecodedExport, slow: DecodedExport) -> None:
    # repr also tells True from 1, 1.0 from 1, -0.0 from 0.0, dict order, and NaN == NaN
    assert repr(fast) == repr(slow)
    assert _shape(fast) == _shape(slow)


def assert_agrees(body: bytes) -> DecodedExport | None:
    """The compiled result equals upb's, or is None; never an answer where upb refuses."""
    fast = decode_traces(body)
    slow = upb_outcome(body)
    if fast is not None:
        assert isinstance(slow, DecodedExport), f"upb refused ({slow}) what the wire decoder accepted"
        assert_same(fast, slow)
    assert repr(otlp_proto.decode_protobuf(body) if isinstance(slow, DecodedExport) else slow) == repr(slow)
    return fast


# --- generated requests -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, wire: int, payload: bytes | int) -> bytes:
    """One field on the wire: varint (0) from an int, length-delimited (2) or fixed from bytes."""
    tag = _varint(number << 3 | wire)
    if isinstance(payload, int):
        return tag + _varint(payload)
    return tag + (_varint(len(payload)) if wire == 2 else b"") + payload


UNKNOWN_FIELDS = st.lists(
    st.one_of(
        st.builds(field, st.integers(17, 500), st.just(0), st.integers(0, (1 << 64) - 1)),
        st.builds(field, st.integers(17, 500), st.just(1), st.binary(min_size=8, max_size=8)),
        st.builds(field, st.integers(17, 500), st.just(2), st.binary(max_size=12)),
        st.builds(field, st.integers(17, 500), st.just(5), st.binary(min_size=4, max_size=4)),
    ),
    max_size=2,
).map(b"".join)


def with_unknown(message: MessageT, extra: bytes) -> MessageT:
    """``message`` carrying ``extra`` unknown fields (upb keeps and re-serialises them)."""
    return type(message).FromString(message.SerializeToString() + extra)


def _array(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    return st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs)))


def _kvlist(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    pairs = st.lists(st.tuples(KEYS, children), max_size=3)
    return pairs.map(
        lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
    )


SCALAR_VALUES = st.one_of(
    st.just(AnyValue()),
    st.text().map(lambda s: AnyValue(string_value=s)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.integers(-(1 << 63), (1 << 63) - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats().map(lambda f: AnyValue(double_value=f)),
    st.binary(max_size=12).map(lambda b: AnyValue(bytes_value=b)),
)
ANY_VALUES = st.recursive(SCALAR_VALUES, lambda c: _array(c) | _kvlist(c), max_leaves=8)
KEY_VALUES = st.lists(
    st.builds(
        lambda k, v, absent: KeyValue(key=k) if absent else KeyValue(key=k, value=v),
        KEYS,
        ANY_VALUES,
        st.booleans(),
    ),
    max_size=5,
)
IDS = st.one_of(st.binary(min_size=16, max_size=16), st.just(b""), st.just(bytes(16)), st.binary(max_size=20))
SPAN_IDS = st.one_of(
    st.binary(min_size=8, max_size=8), st.just(b""), st.just(bytes(8)), st.binary(max_size=10)
)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(IDS),
        span_id=draw(SPAN_IDS),
        parent_span_id=draw(st.one_of(st.just(b""), SPAN_IDS)),
        trace_state=draw(st.text(max_size=4)),
        name=draw(st.text(max_size=10)),
        kind=Span.SpanKind.ValueType(draw(st.one_of(st.integers(0, 5), INT32))),
        start_time_unix_nano=draw(UINT64),
        end_time_unix_nano=draw(UINT64),
        attributes=draw(KEY_VALUES),
        dropped_attributes_count=draw(st.integers(0, 3)),
        flags=draw(st.integers(0, (1 << 32) - 1)),
    )
    if draw(st.booleans()):
        span.end_time_unix_nano = min(span.start_time_unix_nano + draw(st.integers(0, 10**9)), (1 << 64) - 1)
    for _ in range(draw(st.integers(0, 2))):
        span.events.add(
            time_unix_nano=draw(UINT64), name=draw(st.text(max_size=6)), attributes=draw(KEY_VALUES)
        )
    for _ in range(draw(st.integers(0, 1))):
        span.links.add(trace_id=draw(IDS), span_id=draw(SPAN_IDS), attributes=draw(KEY_VALUES))
    if draw(st.booleans()):
        span.status.CopyFrom(
            Status(code=Status.StatusCode.ValueType(draw(INT32)), message=draw(st.text(max_size=6)))
        )
    return with_unknown(span, draw(UNKNOWN_FIELDS))


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = ResourceSpans(schema_url=draw(st.text(max_size=4)))
        if draw(st.booleans()):
            rs.resource.CopyFrom(with_unknown(Resource(attributes=draw(KEY_VALUES)), draw(UNKNOWN_FIELDS)))
        for _ in range(draw(st.integers(0, 3))):
            ss = ScopeSpans(spans=draw(st.lists(spans(), max_size=4)))
            if draw(st.booleans()):
                scope = InstrumentationScope(
                    name=draw(st.text(max_size=6)),
                    version=draw(st.text(max_size=3)),
                    attributes=draw(KEY_VALUES),
                )
                ss.scope.CopyFrom(scope)
            rs.scope_spans.append(ss)
        request.resource_spans.append(rs)
    return request


def shuffled(message: Message, rnd: random.Random) -> bytes:
    """``message`` serialised with its fields, at every level, in a random order (the
    elements of one repeated field keep theirs: that order is the message's content)."""
    fields: list[list[bytes]] = []
    for fd, value in message.ListFields():
        chunks = []
        for item in value if fd.is_repeated else [value]:
            if fd.type == fd.TYPE_MESSAGE:
                chunks.append(field(fd.number, 2, shuffled(item, rnd)))
            else:
                one = type(message)()
                if fd.is_repeated:
                    getattr(one, fd.name).append(item)
                else:
                    setattr(one, fd.name, item)
                chunks.append(one.SerializeToString())
        fields.append(chunks)
    out = []
    while fields:
        chunks = rnd.choice(fields)
        out.append(chunks.pop(0))
        if not chunks:
            fields.remove(chunks)
    return b"".join(out)


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(requests(), UNKNOWN_FIELDS)
def test_generated_requests_decode_as_upb_does(request: ExportTraceServiceRequest, extra: bytes) -> None:
    body = request.SerializeToString() + extra
    fast = assert_agrees(body)
    # Only nesting beyond upb's depth limit may send a well-formed request to upb.
    assert fast is not None or isinstance(upb_outcome(body), OtlpDecodeError)


@PROPERTY
@given(requests(), st.randoms(use_true_random=False))
def test_fields_in_any_order_decode_as_upb_does(
    request: ExportTraceServiceRequest, rnd: random.Random
) -> None:
    body = shuffled(request, rnd)
    expected = ExportTraceServiceRequest()
    expected.CopyFrom(request)
    expected.DiscardUnknownFields()  # ListFields (so ``shuffled``) leaves unknown fields out
    assert ExportTraceServiceRequest.FromString(body) == expected  # the same message, reordered
    assert assert_agrees(body) is not None or isinstance(upb_outcome(body), OtlpDecodeError)


@PROPERTY
@given(st.binary(max_size=200))
def test_random_bytes_never_disagree(body: bytes) -> None:
    assert_agrees(body)


@PROPERTY
@given(requests(), st.data())
def test_damaged_bodies_never_disagree(request: ExportTraceServiceRequest, data: st.DataObject) -> None:
    body = bytearray(request.SerializeToString())
    if not body:
        return
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    assert_agrees(bytes(body[:cut]))
    assert_agrees(bytes(body))


# --- the cases it leaves to upb, and the ones it must answer ------------------------------

SPAN_OK = field(1, 2, b"\x01" * 16) + field(2, 2, b"\x02" * 8)


def body_of_span(span: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    scope_spans = field(2, 2, (field(1, 2, scope) if scope else b"") + field(2, 2, span))
    return field(1, 2, (field(1, 2, resource) if resource else b"") + scope_spans)


def attribute(value: bytes, key: bytes = b"k") -> bytes:
    return field(9, 2, field(1, 2, key) + field(2, 2, value))


def _nested_arrays(depth: int) -> bytes:
    value = field(1, 2, b"x")
    for _ in range(depth):
        value = field(5, 2, field(1, 2, value))
    return value


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (body_of_span(SPAN_OK + attribute(field(1, 2, b"a") + field(3, 0, 7))), "AnyValue with two values"),
        (
            body_of_span(SPAN_OK + field(9, 2, field(1, 2, b"k") + field(2, 2, b"") * 2)),
            "KeyValue.value twice",
        ),
        (body_of_span(SPAN_OK + field(15, 2, b"") * 2), "status twice"),
        (body_of_span(SPAN_OK, resource=b"") + field(1, 2, field(1, 2, b"") * 2), "resource twice"),
        (body_of_span(SPAN_OK + field(5, 2, b"\xff\xfe")), "invalid UTF-8 in the name"),
        (body_of_span(SPAN_OK + field(3, 2, b"\xc0\x80")), "invalid UTF-8 in trace_state"),
        (body_of_span(SPAN_OK + field(6, 2, b"x")), "kind with the wrong wire type"),
        (body_of_span(SPAN_OK + _varint(99 << 3 | 3) + _varint(99 << 3 | 4)), "a group"),
        (body_of_span(SPAN_OK + attribute(_nested_arrays(40))), "nesting beyond the limit"),
        (body_of_span(SPAN_OK + attribute(field(8, 0, 1))), "string_value_strindex"),
        (body_of_span(SPAN_OK)[:-1], "truncated"),
        (b"\x0a\xff\xff\xff\xff\x0f", "length past the end"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "varint of 11 bytes"),
    ],
)
def test_what_it_leaves_to_upb(body: bytes, why: str) -> None:
    assert decode_traces(body) is None, why
    assert_agrees(body)


@pytest.mark.parametrize("depth", range(30, 38))
def test_nesting_up_to_the_limit_is_decoded(depth: int) -> None:
    body = body_of_span(SPAN_OK + attribute(_nested_arrays(depth)))
    fast = assert_agrees(body)
    assert (fast is not None) == (depth <= 33)  # deeper: upb's path refuses it
    assert isinstance(upb_outcome(body), OtlpDecodeError) == (depth > 33)


def test_wire_semantics_match_upb() -> None:
    key_value = field(1, 2, b"service.name") + field(2, 2, field(1, 2, b"svc"))
    resource = field(1, 2, field(1, 2, key_value))  # ResourceSpans.resource.attributes[0]
    span = (
        attribute(field(1, 2, b""), b"empty")
        + attribute(b"", b"none")
        + attribute(field(2, 0, 2), b"bool")
        + attribute(field(3, 0, (1 << 64) - 5), b"negative")
        + attribute(field(7, 2, b"\x00\xff"), b"bytes")
        + attribute(field(1, 2, b"first"), b"dup")
        + attribute(field(1, 2, b"last"), b"dup")
        + field(6, 0, (1 << 64) - 1)  # kind -1
        + field(15, 2, field(3, 0, 2))  # a status without a message
        + SPAN_OK  # ids after the attributes
    )
    # The resource after its scope_spans, the scope after its spans: order on the wire is free.
    scope_spans = field(2, 2, span) + field(2, 2, span) + field(1, 2, field(1, 2, b"lib"))
    body = field(1, 2, field(2, 2, scope_spans) + resource)
    fast = assert_agrees(body)
    assert fast is not None
    first = fast.spans[0]
    assert first.attributes == {
        "empty": "",
        "none": None,
        "bool": True,
        "negative": -5,
        "bytes": "AP8=",
        "dup": "last",
    }
    assert (first.kind, first.status_code, first.status_message, first.scope_name) == (-1, 2, None, "lib")
    assert first.resource is fast.spans[1].resource == {"service.name": "svc"}


@pytest.mark.parametrize("shape", ["agent", "llm"])
def test_canonical_bodies_take_the_fast_path(shape: str) -> None:
    """Fails, rather than skips, when the extension was not built (``make install`` builds it)."""
    rng = random.Random(7)
    body = (
        build_request(20, rng=rng)[0]
        if shape == "agent"
        else build_llm_request(20, rng=rng, start_ns=10**18)[0]
    )
    assert otlp_proto.USE_COMPILED
    fast = decode_traces(body)
    assert fast is not None
    assert len(fast.spans) == 20
    assert_same(fast, otlp_proto.decode_protobuf_upb(body))


def test_the_flag_turns_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(otlp_proto, "decode_traces", lambda body: calls.append(body))
    body = build_request(3, rng=random.Random(1))[0]
    assert len(otlp_proto.decode_protobuf(body).spans) == 3  # None from the fast path: upb answers
    monkeypatch.setattr(otlp_proto, "USE_COMPILED", False)
    otlp_proto.decode_protobuf(body)
    assert calls == [body]
