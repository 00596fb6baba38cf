"""Spans to OTLP protobuf bytes, on the export thread: payload JSON, redaction, encoding.

Both kinds of span end here: our lean ``SpanRecord`` and the ``ReadableSpan`` that
OpenTelemetry SDK spans (third-party instrumentations on our TracerProvider) become.
Redaction runs here, before a span is written to the spool or sent, so nothing
unredacted leaves the process, not even to disk.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from watchkeep import semconv
from watchkeep.sdk import wire
from watchkeep.sdk.config import Config
from watchkeep.sdk.errors import ErrorLog
from watchkeep.sdk.payload import bind_arguments, dumps, genai_messages
from watchkeep.sdk.spans import NOTHING, SpanRecord

SDK_NAME = "watchkeep"
SDK_VERSION = "0.1.0"
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200
REDACTION_FAILED = "[redaction failed]"

_Group = tuple[bytes, bytes]  # (resource bytes, scope bytes)


class Encoder:
    """Builds ``ExportTraceServiceRequest`` bytes from a batch of finished spans.

    Thread-safe: the export thread and a caller spilling an overflow may both use it.
    """

    def __init__(self, config: Config, errors: ErrorLog) -> None:
        self._errors = errors
        self._redact = config.redact
        self._max_chars = config.max_payload_chars
        self._writer = wire.AttributeWriter()
        resource: dict[str, Any] = {
            semconv.SERVICE_NAME: config.service_name,
            "telemetry.sdk.name": SDK_NAME,
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": SDK_VERSION,
        }
        defaults: dict[str, Any] = {}
        if config.environment:
            resource[semconv.DEPLOYMENT_ENVIRONMENT_NAME] = config.environment
            defaults[semconv.WK_ENVIRONMENT] = config.environment
        if config.release:
            resource[semconv.SERVICE_VERSION] = config.release
            defaults[semconv.WK_RELEASE] = config.release
        self.resource_attributes: Mapping[str, Any] = resource
        self._defaults = defaults
        self._own_group: _Group = (
            self._writer.fields(wire.RESOURCE_ATTRIBUTE, resource),
            wire.scope(SDK_NAME, SDK_VERSION),
        )

    # --- batch ------------------------------------------------------------------------
    def encode(self, spans: Iterable[SpanRecord | ReadableSpan]) -> tuple[bytes, int]:
        """Serialised request and the number of spans in it (a span that fails is skipped)."""
        groups: dict[_Group, list[bytes]] = {}
        count = 0
        for span in spans:
            try:
                if type(span) is SpanRecord:
                    group, encoded = self._own_group, self._record(span)
                else:
                    assert isinstance(span, ReadableSpan)
                    group, encoded = self._group_of(span), self._readable(span)
            except Exception as exc:
                self._errors.report("encode", exc, message="a span could not be encoded")
                continue
            groups.setdefault(group, []).append(encoded)
            count += 1
        by_resource: dict[bytes, list[bytes]] = {}
        for (resource, scope), encoded_spans in groups.items():
            by_resource.setdefault(resource, []).append(wire.scope_spans(scope, encoded_spans))
        request = wire.export_request(
            wire.resource_spans(resource, scopes) for resource, scopes in by_resource.items()
        )
        return request, count

    # --- our records ------------------------------------------------------------------
    def record_attributes(self, record: SpanRecord) -> dict[str, Any]:
        """The final attribute dict of a record, payloads serialised, before redaction."""
        attrs = dict(self._defaults)
        attrs.update(record.trace_attrs)
        if record.lazy is not None:
            try:
                attrs.update(record.lazy())
            except Exception as exc:
                self._errors.report("instrumentation", exc, message="could not read a response for its span")
        attrs.update(record.attributes)
        max_chars = self._max_chars
        if record.input is not None:
            attrs[semconv.WK_INPUT] = dumps(bind_arguments(*record.input), max_chars)
        if record.output is not NOTHING:
            attrs[semconv.WK_OUTPUT] = dumps(record.output, max_chars)
        if record.payloads:
            for key, (value, messages) in record.payloads.items():
                attrs[key] = dumps(genai_messages(value) if messages else value, max_chars)
        return attrs

    def _record(self, record: SpanRecord) -> bytes:
        try:
            attrs = self.record_attributes(record)
        except Exception as exc:  # a hostile payload must not cost us the span itself
            self._errors.report("payload", exc, message="a captured value could not be encoded")
            attrs = {**self._defaults, **record.trace_attrs, **record.attributes}
        return wire.span(
            trace_id=record.trace_id,
            span_id=record.span_id,
            parent_id=record.parent_id,
            name=record.name,
            kind=record.kind.value + 1,
            start_ns=record.start_ns,
            end_ns=record.end_ns,
            attributes=self._attributes(wire.SPAN_ATTRIBUTE, attrs),
            events=[self._event(*event) for event in record.events or ()],
            links=[self._link(link.context, link.attributes) for link in record.links or ()],
            status_code=record.status_code.value,
            status_message=self._text("status.message", record.status_message or ""),
            flags=_FLAGS_HAS_IS_REMOTE | 0x01,
        )

    def _attributes(self, tag: bytes, attrs: dict[str, Any]) -> bytes:
        return self._writer.fields(tag, self._redacted(attrs))

    def _event(
        self,
        name: str,
        timestamp: int,
        attributes: Mapping[str, Any] | None,
        exc: BaseException | None,
    ) -> bytes:
        attrs = dict(attributes or {})
        if exc is not None:
            attrs.setdefault("exception.type", type(exc).__qualname__)
            attrs.setdefault("exception.message", str(exc))
            attrs.setdefault("exception.stacktrace", "".join(traceback.format_exception(exc)))
        return wire.event(name, timestamp, self._attributes(wire.EVENT_ATTRIBUTE, attrs))

    def _link(self, context: Any, attributes: Mapping[str, Any] | None) -> bytes:
        return wire.link(
            context.trace_id,
            context.span_id,
            self._attributes(wire.LINK_ATTRIBUTE, dict(attributes or {})),
            int(context.trace_flags) | _FLAGS_HAS_IS_REMOTE,
        )

    # --- OpenTelemetry SDK spans ------------------------------------------------------
    def _group_of(self, span: ReadableSpan) -> _Group:
        scope = span.instrumentation_scope
        scope_bytes = wire.scope(scope.name, scope.version or "") if scope else b""
        if span.resource is None:
            return self._own_group[0], scope_bytes
        return self._writer.fields(wire.RESOURCE_ATTRIBUTE, span.resource.attributes), scope_bytes

    def _readable(self, span: ReadableSpan) -> bytes:
        ctx = span.context
        assert ctx is not None
        parent = span.parent
        flags = _FLAGS_HAS_IS_REMOTE | int(ctx.trace_flags)
        if parent is not None and parent.is_remote:
            flags |= _FLAGS_IS_REMOTE
        return wire.span(
            trace_id=ctx.trace_id,
            span_id=ctx.span_id,
            parent_id=parent.span_id if parent is not None else 0,
            trace_state=ctx.trace_state.to_header() if ctx.trace_state else "",
            name=span.name,
            kind=span.kind.value + 1,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            attributes=self._attributes(wire.SPAN_ATTRIBUTE, {**self._defaults, **(span.attributes or {})}),
            events=[self._event(e.name, e.timestamp, e.attributes, None) for e in span.events],
            links=[self._link(link.context, link.attributes) for link in span.links],
            status_code=span.status.status_code.value,
            status_message=self._text("status.message", span.status.description or ""),
            flags=flags,
        )

    # --- redaction --------------------------------------------------------------------
    def _text(self, key: str, text: str) -> str:
        if self._redact is None or not text:
            return text
        try:
            return str(self._redact(key, text))
        except Exception as exc:  # fail closed: never send what could not be redacted
            self._errors.report("redact", exc, message="the redact hook raised")
            return REDACTION_FAILED

    def _redacted(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self._redact is None:
            return attrs
        for key, value in attrs.items():
            if isinstance(value, str):
                attrs[key] = self._text(key, value)
            elif isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
                attrs[key] = [self._text(key, v) if isinstance(v, str) else v for v in value]
        return attrs

    def redact_text(self, key: str, text: str) -> str:
        """Apply the redact hook to one string (used for scores)."""
        return self._text(key, text)
