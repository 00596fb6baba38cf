"""What the OTLP decoders produce: spans with plain-Python attributes, before mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Attributes = dict[str, Any]


class OtlpDecodeError(ValueError):
    """The request body is not a valid OTLP export; the message names the problem."""


@dataclass(slots=True)
class DecodedEvent:
    """A span event: a timestamped, named set of attributes."""

    time_unix_nano: int
    name: str
    attributes: Attributes


@dataclass(slots=True)
class DecodedSpan:
    """One span as sent, with ids as lowercase hex and attributes as Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int
    status_message: str | None
    attributes: Attributes
    resource: Attributes
    scope_name: str | None
    events: list[DecodedEvent] = field(default_factory=list)


@dataclass(slots=True)
class DecodedExport:
    """A whole export request: the valid spans and why the others were rejected."""

    spans: list[DecodedSpan] = field(default_factory=list)
    rejected: int = 0
    rejection_reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        """Count one invalid span, keeping the first few reasons for the response."""
        self.rejected += 1
        if len(self.rejection_reasons) < 5:
            self.rejection_reasons.append(reason)


_ZERO_TRACE_ID, _ZERO_SPAN_ID = "0" * 32, "0" * 16


def check_ids(export: DecodedExport, trace_id: str, span_id: str, parent: str | None) -> bool:
    """Validate hex ids per the OTLP spec (non-zero, right length); reject the span if not."""
    if len(trace_id) != 32 or trace_id == _ZERO_TRACE_ID:
        export.reject(f"invalid trace id {trace_id!r}")
        return False
    if len(span_id) != 16 or span_id == _ZERO_SPAN_ID:
        export.reject(f"invalid span id {span_id!r} in trace {trace_id}")
        return False
    if parent is not None and len(parent) != 16:
        export.reject(f"invalid parent span id {parent!r} in trace {trace_id}")
        return False
    return True
