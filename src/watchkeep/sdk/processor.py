"""The span processor of our TracerProvider: OpenTelemetry SDK spans join our pipeline.

OpenTelemetry's ``BatchSpanProcessor`` drops spans when its queue is full and loses a
batch when export fails; spans from third-party instrumentations on our provider go
through the same queue, spool and replay as our own spans instead.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from watchkeep.sdk.pipeline import Pipeline
from watchkeep.sdk.trace_context import TRACE_ATTRS


class PipelineSpanProcessor(SpanProcessor):
    """Stamps trace-level attributes at start and hands finished spans to the pipeline."""

    def __init__(self, pipeline: Pipeline, shutdown_timeout: float) -> None:
        self._pipeline = pipeline
        self._shutdown_timeout = shutdown_timeout

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = TRACE_ATTRS.get()
        if attributes:
            span.set_attributes(attributes)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._pipeline.submit(span)

    def shutdown(self) -> None:
        self._pipeline.shutdown(self._shutdown_timeout)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._pipeline.flush(timeout_millis / 1000)
