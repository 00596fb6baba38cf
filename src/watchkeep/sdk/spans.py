"""The lean span: what the caller's thread records before handing off to the export thread.

A ``SpanRecord`` keeps references (arguments, return value, response objects) and raw
numbers; turning them into JSON and OTLP protobuf happens on the export thread. It is an
``opentelemetry.trace.Span`` and is placed in the OpenTelemetry context, so spans from
any OpenTelemetry instrumentation nest under it, and it nests under theirs.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from watchkeep.sdk.trace_context import TRACE_ATTRS

_SPAN_KEY = trace.propagation._SPAN_KEY  # the key OpenTelemetry stores the current span under
_get_value = otel_context.get_value
_getrandbits = random.getrandbits  # the module instance is reseeded after os.fork()
_time_ns = time.time_ns
_TRACE_ID_LOW = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)

NOTHING: Any = object()
"""Marks an output that was not captured (``None`` is a legitimate return value)."""

Sink = Callable[["SpanRecord"], None]
EventRecord = tuple[str, int, Mapping[str, Any] | None, BaseException | None]
InputRecord = tuple[inspect.Signature | None, tuple[Any, ...], dict[str, Any]]


class SpanRecord(trace.Span):
    """A span recorded with the minimum of work; the export thread does the rest."""

    # Fields every span sets live in slots; the rarely used ones below are class-level
    # defaults, shadowed per instance only when set, so starting a span stays cheap.
    __slots__ = (
        "_sink",
        "attributes",
        "end_ns",
        "kind",
        "name",
        "parent_id",
        "sampled",
        "span_id",
        "start_ns",
        "trace_attrs",
        "trace_id",
    )

    payloads: dict[str, tuple[Any, bool]] | None = None
    events: list[EventRecord] | None = None
    links: list[Link] | None = None
    input: InputRecord | None = None
    output: Any = NOTHING
    lazy: Callable[[], Mapping[str, Any]] | None = None
    status_code: StatusCode = StatusCode.UNSET
    status_message: str | None = None
    _context: SpanContext | None = None

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        trace_id: int,
        span_id: int,
        parent_id: int,
        sampled: bool,
        sink: Sink | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.sampled = sampled
        self._sink = sink
        self.trace_attrs: Mapping[str, Any] = TRACE_ATTRS.get()
        self.attributes: dict[str, Any] = {}
        self.end_ns = 0
        self.start_ns = _time_ns()

    # --- opentelemetry.trace.Span -----------------------------------------------------
    def get_span_context(self) -> SpanContext:
        if self._context is None:
            self._context = SpanContext(
                self.trace_id,
                self.span_id,
                is_remote=False,
                trace_flags=_SAMPLED if self.sampled else _NOT_SAMPLED,
            )
        return self._context

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_time or _time_ns()
        if self.sampled and self._sink is not None:
            self._sink(self)

    def is_recording(self) -> bool:
        return self.sampled and not self.end_ns

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        self.attributes.update(attributes)

    def update_name(self, name: str) -> None:
        self.name = name

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        self._event((name, timestamp or _time_ns(), attributes, None))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.links is None:
            self.links = []
        self.links.append(Link(context, attributes))

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status):
            self.status_code, self.status_message = status.status_code, status.description
        else:
            self.status_code, self.status_message = status, description

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # The traceback is formatted on the export thread, not here.
        self._event(("exception", timestamp or _time_ns(), attributes, exception))

    # --- watchkeep --------------------------------------------------------------------
    def set_payload(self, key: str, value: Any, *, messages: bool = False) -> None:
        """Attach an object serialised to a JSON attribute later, on the export thread."""
        if self.payloads is None:
            self.payloads = {}
        self.payloads[key] = (value, messages)

    def fail(self, exc: BaseException) -> None:
        """Mark the span as failed by ``exc`` (status, message and exception event)."""
        self.status_code = StatusCode.ERROR
        self.status_message = f"{type(exc).__name__}: {exc}"
        self._event(("exception", _time_ns(), None, exc))

    def _event(self, event: EventRecord) -> None:
        if self.events is None:
            self.events = []
        self.events.append(event)

    def __repr__(self) -> str:
        return f"SpanRecord({self.name!r}, trace_id={self.trace_id:032x}, span_id={self.span_id:016x})"


def start_record(name: str, kind: SpanKind, sink: Sink | None, sample_bound: int) -> SpanRecord:
    """A new record whose parent is the current OpenTelemetry span, ours or anyone's.

    Roots are sampled on the low 64 bits of the trace id, the same rule as
    OpenTelemetry's ``TraceIdRatioBased``, so both paths agree on every trace.
    """
    parent = _get_value(_SPAN_KEY)
    if type(parent) is SpanRecord:
        return SpanRecord(
            name, kind, parent.trace_id, _getrandbits(64) or 1, parent.span_id, parent.sampled, sink
        )
    if parent is not None and isinstance(parent, trace.Span):
        ctx = parent.get_span_context()
        if ctx.is_valid:
            return SpanRecord(
                name,
                kind,
                ctx.trace_id,
                _getrandbits(64) or 1,
                ctx.span_id,
                ctx.trace_flags.sampled,
                sink,
            )
    trace_id = _getrandbits(128) or 1
    return SpanRecord(
        name,
        kind,
        trace_id,
        _getrandbits(64) or 1,
        0,
        (trace_id & _TRACE_ID_LOW) < sample_bound,
        sink,
    )


def activate(span: trace.Span) -> object:
    """Make ``span`` the current OpenTelemetry span; returns the token for ``deactivate``."""
    return otel_context.attach(trace.set_span_in_context(span))


def deactivate(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def current_span() -> trace.Span | None:
    """The current span if it records (ours or an OpenTelemetry SDK span), else ``None``."""
    span = _get_value(_SPAN_KEY)
    if type(span) is SpanRecord:
        return span if span.sampled and not span.end_ns else None
    if isinstance(span, trace.Span) and span.is_recording():
        return span
    return None


def trace_and_span_ids(span: trace.Span | None) -> tuple[str | None, str | None]:
    """Hex ids of ``span`` as the API expects them (32 and 16 hex digits)."""
    if span is None:
        return None, None
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def string_tuple(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(map(str, values))
