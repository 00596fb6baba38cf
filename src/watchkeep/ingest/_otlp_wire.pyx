# cython: language_level=3, boundscheck=False, wraparound=False
"""A one-pass protobuf wire decoder of ExportTraceServiceRequest (issue 17 §1, ADR 0031).

upb parses fast but then makes a Python wrapper for every KeyValue and AnyValue that
``otlp_proto.decode_protobuf`` walks; this module reads the wire format once and builds
the same DecodedSpan/DecodedEvent objects directly. It handles well-formed OTLP only:
anything it is not sure to decode exactly as upb would (malformed wire data, groups, a
singular message sent twice, an AnyValue with two values, deep nesting, invalid UTF-8,
fields of newer OTLP versions it does not read) makes ``decode_traces`` return None, and
the caller takes the upb path, which gives that input its exact result or error.
"""

from binascii import b2a_base64

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

from watchkeep.ingest.decoded import DecodedEvent, DecodedExport, DecodedSpan, check_ids


cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    char* PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)


class _Fallback(Exception):
    """Raised inside the decoder: leave this body to upb."""


cdef int _MAX_DEPTH = 32  # otlp_proto._MAX_DEPTH: deeper arrays/kvlists are upb's to refuse
cdef const char* _HEX = b"0123456789abcdef"

# Attribute keys repeat on every span: a decoded key is kept in a small hashed table and
# reused when the same bytes come again (no decode, and its str hash is already cached).
cdef enum:
    _KEY_SLOTS = 1024
    _KEY_MAX = 64
cdef list _keys = [None] * _KEY_SLOTS


cdef inline Py_ssize_t _varint(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end,
                               uint64_t* out) except -1:
    """Read a varint at ``pos``; the position after it."""
    cdef uint64_t result = 0
    cdef unsigned char byte
    cdef int shift = 0
    if pos < end and b[pos] < 0x80:
        out[0] = b[pos]
        return pos + 1
    while True:
        if pos >= end:
            raise _Fallback
        byte = b[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise _Fallback  # more than 64 bits: leave the edge cases to upb
        result |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            out[0] = result
            return pos
        shift += 7


cdef inline Py_ssize_t _tag(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end,
                            uint32_t* field, int* wire) except -1:
    """Read a field tag; groups, invalid wire types and field 0 fall back."""
    cdef uint64_t tag
    pos = _varint(b, pos, end, &tag)
    if tag > 0xFFFFFFFF or (tag >> 3) == 0:
        raise _Fallback
    wire[0] = <int>(tag & 7)
    if wire[0] == 3 or wire[0] == 4 or wire[0] > 5:
        raise _Fallback
    field[0] = <uint32_t>(tag >> 3)
    return pos


cdef inline Py_ssize_t _sub(const unsigned char* b, Py_ssize_t* pos, Py_ssize_t end,
                            int wire) except -1:
    """A length-delimited field at ``pos[0]``: moves ``pos[0]`` to its start, returns its end."""
    cdef uint64_t size
    if wire != 2:
        raise _Fallback
    pos[0] = _varint(b, pos[0], end, &size)
    if size > <uint64_t>(end - pos[0]):
        raise _Fallback
    return pos[0] + <Py_ssize_t>size


cdef inline Py_ssize_t _skip(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end,
                             int wire) except -1:
    """Step over a field's value of any valid wire type."""
    cdef uint64_t ignored
    if wire == 0:
        return _varint(b, pos, end, &ignored)
    if wire == 2:
        return _sub(b, &pos, end, wire)
    pos += 8 if wire == 1 else 4
    if pos > end:
        raise _Fallback
    return pos


cdef inline uint64_t _fixed64(const unsigned char* b, Py_ssize_t* pos, Py_ssize_t end,
                              int wire) except? 0xFFFFFFFFFFFFFFFF:
    """A little-endian fixed64 at ``pos[0]``; moves ``pos[0]`` past it."""
    cdef uint64_t value = 0
    cdef int i
    if wire != 1 or pos[0] + 8 > end:
        raise _Fallback
    for i in range(7, -1, -1):
        value = (value << 8) | b[pos[0] + i]
    pos[0] += 8
    return value


cdef inline uint64_t _varint_field(const unsigned char* b, Py_ssize_t* pos, Py_ssize_t end,
                                   int wire) except? 0xFFFFFFFFFFFFFFFF:
    """A varint-typed field's value; moves ``pos[0]`` past it."""
    cdef uint64_t value
    if wire != 0:
        raise _Fallback
    pos[0] = _varint(b, pos[0], end, &value)
    return value


cdef inline str _text(const unsigned char* b, Py_ssize_t start, Py_ssize_t stop):
    """UTF-8 text; invalid UTF-8 raises UnicodeDecodeError (upb refuses it too)."""
    return PyUnicode_DecodeUTF8(<const char*>(b + start), stop - start, NULL)


cdef str _key(const unsigned char* b, Py_ssize_t start, Py_ssize_t stop):
    """An attribute key, from the key table when these bytes were seen before."""
    cdef Py_ssize_t n = stop - start, i
    cdef uint32_t h = 2166136261u
    cdef object cached
    cdef str key
    if n > _KEY_MAX:
        return _text(b, start, stop)
    for i in range(start, stop):
        h = (h ^ b[i]) * 16777619u
    h = (h ^ <uint32_t>n) & (_KEY_SLOTS - 1)
    cached = _keys[h]
    if (
        cached is not None
        and PyUnicode_GET_LENGTH(cached) == n
        and memcmp(PyUnicode_DATA(cached), b + start, n) == 0
    ):
        return <str>cached
    key = _text(b, start, stop)
    if PyUnicode_IS_COMPACT_ASCII(key):  # only ASCII keys: their data is their UTF-8
        _keys[h] = key
    return key


cdef str _hex(const unsigned char* b, Py_ssize_t start, Py_ssize_t stop):
    """``bytes.hex()`` of a slice, without making the bytes."""
    cdef Py_ssize_t n = stop - start, i
    cdef object text = PyUnicode_New(2 * n, 127)
    cdef unsigned char* out = <unsigned char*>PyUnicode_DATA(text)
    for i in range(n):
        out[2 * i] = _HEX[b[start + i] >> 4]
        out[2 * i + 1] = _HEX[b[start + i] & 15]
    return <str>text


cdef inline bint _valid_id(const unsigned char* b, Py_ssize_t start, Py_ssize_t stop,
                           Py_ssize_t size):
    """What ``check_ids`` accepts, read from the bytes: ``size`` long and not all zero."""
    cdef Py_ssize_t i
    if stop - start != size:
        return False
    for i in range(start, stop):
        if b[i]:
            return True
    return False


cdef object _any_value(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int depth):
    """An AnyValue as ``otlp_proto.any_value`` makes it."""
    cdef uint32_t field
    cdef int wire, values = 0
    cdef Py_ssize_t stop
    cdef uint64_t bits
    cdef double number
    cdef object value = None
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            value = _text(b, pos, stop)
            pos = stop
        elif field == 2:
            value = _varint_field(b, &pos, end, wire) != 0
        elif field == 3:
            value = <int64_t>_varint_field(b, &pos, end, wire)
        elif field == 4:
            bits = _fixed64(b, &pos, end, wire)
            memcpy(&number, &bits, 8)
            value = number
        elif field == 5 or field == 6:
            stop = _sub(b, &pos, end, wire)
            if depth > _MAX_DEPTH:
                raise _Fallback
            if field == 5:
                value = _array(b, pos, stop, depth + 1)
            else:
                value = {}
                _key_values(b, pos, stop, <dict>value, depth + 1)
            pos = stop
        elif field == 7:
            stop = _sub(b, &pos, end, wire)
            value = b2a_base64(b[pos:stop], newline=False).decode("ascii")
            pos = stop
        elif field == 8:
            raise _Fallback  # string_value_strindex (profiles' dictionary): upb's to decode
        else:
            pos = _skip(b, pos, end, wire)
            continue
        values += 1
    if values > 1:
        raise _Fallback  # a oneof set twice: upb keeps the last, merging messages
    return value


cdef list _array(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, int depth):
    """An ArrayValue's values."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef list out = []
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            out.append(_any_value(b, pos, stop, depth))
            pos = stop
        else:
            pos = _skip(b, pos, end, wire)
    return out


cdef int _key_value(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, dict out,
                    int depth) except -1:
    """One KeyValue into ``out`` (a repeated key: the last wins, as in a dict)."""
    cdef uint32_t field
    cdef int wire
    cdef bint has_value = False
    cdef Py_ssize_t stop
    cdef str key = ""
    cdef object value = None
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            key = _key(b, pos, stop)
            pos = stop
        elif field == 2:
            stop = _sub(b, &pos, end, wire)
            if has_value:
                raise _Fallback
            has_value = True
            value = _any_value(b, pos, stop, depth)
            pos = stop
        elif field == 3:
            raise _Fallback  # key_strindex
        else:
            pos = _skip(b, pos, end, wire)
    out[key] = value
    return 0


cdef int _key_values(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, dict out,
                     int depth) except -1:
    """A KeyValueList's values into ``out``."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, out, depth)
            pos = stop
        else:
            pos = _skip(b, pos, end, wire)
    return 0


cdef int _check_text(const unsigned char* b, Py_ssize_t* pos, Py_ssize_t end,
                     int wire) except -1:
    """A string field we do not keep: still valid UTF-8, as upb requires."""
    cdef Py_ssize_t stop = _sub(b, pos, end, wire)
    _text(b, pos[0], stop)
    pos[0] = stop
    return 0


cdef object _event(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end):
    """A Span.Event."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef uint64_t time = 0
    cdef str name = ""
    cdef dict attributes = {}
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            time = _fixed64(b, &pos, end, wire)
        elif field == 2:
            stop = _sub(b, &pos, end, wire)
            name = _text(b, pos, stop)
            pos = stop
        elif field == 3:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, attributes, 0)
            pos = stop
        elif field == 4:
            _varint_field(b, &pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    return DecodedEvent(time, name, attributes)


cdef int _link(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end) except -1:
    """Validate a Span.Link (not kept, but upb would refuse a malformed one)."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef dict ignored = {}
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1 or field == 2:
            pos = _sub(b, &pos, end, wire)
        elif field == 3:
            _check_text(b, &pos, end, wire)
        elif field == 4:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, ignored, 0)
            pos = stop
        elif field == 5:
            _varint_field(b, &pos, end, wire)
        elif field == 6:
            if wire != 5:
                raise _Fallback
            pos = _skip(b, pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    return 0


cdef tuple _status(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end):
    """A Status as (code, message or None)."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef int32_t code = 0
    cdef str message = ""
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 2:
            stop = _sub(b, &pos, end, wire)
            message = _text(b, pos, stop)
            pos = stop
        elif field == 3:
            code = <int32_t>_varint_field(b, &pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    return (code, message or None)


cdef int _span(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, object export,
               list spans, dict resource, object scope) except -1:
    """One Span: appended to ``spans``, or rejected on ``export`` as otlp_proto does."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef Py_ssize_t trace_at = 0, trace_end = 0, span_at = 0, span_end = 0
    cdef Py_ssize_t parent_at = 0, parent_end = 0
    cdef uint64_t start = 0, finish = 0
    cdef int32_t kind = 0
    cdef str name = ""
    cdef object status = None
    cdef dict attributes = {}
    cdef list events = []
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 9:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, attributes, 0)
            pos = stop
        elif field == 1:
            trace_end = _sub(b, &pos, end, wire)
            trace_at, pos = pos, trace_end
        elif field == 2:
            span_end = _sub(b, &pos, end, wire)
            span_at, pos = pos, span_end
        elif field == 4:
            parent_end = _sub(b, &pos, end, wire)
            parent_at, pos = pos, parent_end
        elif field == 5:
            stop = _sub(b, &pos, end, wire)
            name = _text(b, pos, stop)
            pos = stop
        elif field == 6:
            kind = <int32_t>_varint_field(b, &pos, end, wire)
        elif field == 7:
            start = _fixed64(b, &pos, end, wire)
        elif field == 8:
            finish = _fixed64(b, &pos, end, wire)
        elif field == 11:
            stop = _sub(b, &pos, end, wire)
            events.append(_event(b, pos, stop))
            pos = stop
        elif field == 15:
            stop = _sub(b, &pos, end, wire)
            if status is not None:
                raise _Fallback  # a second Status merges into the first in upb
            status = _status(b, pos, stop)
            pos = stop
        elif field == 3:
            _check_text(b, &pos, end, wire)
        elif field == 13:
            stop = _sub(b, &pos, end, wire)
            _link(b, pos, stop)
            pos = stop
        elif field == 10 or field == 12 or field == 14:
            _varint_field(b, &pos, end, wire)
        elif field == 16:
            if wire != 5:
                raise _Fallback
            pos = _skip(b, pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    trace_id = _hex(b, trace_at, trace_end)
    span_id = _hex(b, span_at, span_end)
    parent = _hex(b, parent_at, parent_end) if parent_end > parent_at else None
    if not (_valid_id(b, trace_at, trace_end, 16) and _valid_id(b, span_at, span_end, 8)
            and (parent_end == parent_at or parent_end - parent_at == 8)):
        check_ids(export, trace_id, span_id, parent)  # rejects it, with its reason
        return 0
    if finish < start:
        export.reject(f"span {span_id} ends before it starts")
        return 0
    if status is None:
        status = (0, None)
    spans.append(
        DecodedSpan(
            trace_id, span_id, parent, name, kind, start, finish, (<tuple>status)[0],
            (<tuple>status)[1], attributes, resource, scope, events,
        )
    )
    return 0


cdef object _scope_name(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end):
    """An InstrumentationScope's name or None; its other fields are only validated."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    cdef str name = ""
    cdef dict ignored = {}
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            name = _text(b, pos, stop)
            pos = stop
        elif field == 2:
            _check_text(b, &pos, end, wire)
        elif field == 3:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, ignored, 0)
            pos = stop
        elif field == 4:
            _varint_field(b, &pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    return name or None


cdef int _scope_spans(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end, object export,
                      list spans, dict resource) except -1:
    """A ScopeSpans: its scope first (wherever it is on the wire), then its spans in order."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop, first = pos
    cdef bint has_scope = False
    cdef object scope = None
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            if has_scope:
                raise _Fallback
            has_scope = True
            scope = _scope_name(b, pos, stop)
            pos = stop
        elif field == 3:
            _check_text(b, &pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    pos = first
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 2:
            stop = _sub(b, &pos, end, wire)
            _span(b, pos, stop, export, spans, resource, scope)
            pos = stop
        else:
            pos = _skip(b, pos, end, wire)
    return 0


cdef int _resource(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end,
                   dict out) except -1:
    """A Resource's attributes into ``out``."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            _key_value(b, pos, stop, out, 0)
            pos = stop
        elif field == 2:
            _varint_field(b, &pos, end, wire)
        elif field == 3:
            raise _Fallback  # entity_refs: upb's to validate
        else:
            pos = _skip(b, pos, end, wire)
    return 0


cdef int _resource_spans(const unsigned char* b, Py_ssize_t pos, Py_ssize_t end,
                         object export, list spans) except -1:
    """A ResourceSpans: one resource dict shared by all its spans."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t stop, first = pos
    cdef bint has_resource = False
    cdef dict resource = {}
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 1:
            stop = _sub(b, &pos, end, wire)
            if has_resource:
                raise _Fallback
            has_resource = True
            _resource(b, pos, stop, resource)
            pos = stop
        elif field == 3:
            _check_text(b, &pos, end, wire)
        else:
            pos = _skip(b, pos, end, wire)
    pos = first
    while pos < end:
        pos = _tag(b, pos, end, &field, &wire)
        if field == 2:
            stop = _sub(b, &pos, end, wire)
            _scope_spans(b, pos, stop, export, spans, resource)
            pos = stop
        else:
            pos = _skip(b, pos, end, wire)
    return 0


def decode_traces(body):
    """``otlp_proto.decode_protobuf(body)``'s DecodedExport, or None to leave it to upb."""
    cdef uint32_t field
    cdef int wire
    cdef Py_ssize_t pos = 0, stop, end
    cdef const unsigned char* b
    if type(body) is not bytes:
        return None
    b = <const unsigned char*>PyBytes_AS_STRING(body)
    end = PyBytes_GET_SIZE(body)
    export = DecodedExport()
    cdef list spans = export.spans
    try:
        while pos < end:
            pos = _tag(b, pos, end, &field, &wire)
            if field == 1:
                stop = _sub(b, &pos, end, wire)
                _resource_spans(b, pos, stop, export, spans)
                pos = stop
            else:
                pos = _skip(b, pos, end, wire)
    except (_Fallback, UnicodeDecodeError):
        return None
    return export
