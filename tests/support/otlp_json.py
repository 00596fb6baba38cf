"""OTLP/JSON spans built by hand for query tests: trace ``n`` is a root and one child,
at a fixed time per ``n``, so tests can state exactly what each filter should return."""

from __future__ import annotations

import json
import time

from sqlalchemy import Engine

from watchkeep.ingest.decode_pool import prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.store.span_writer import SpanWriter

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000


def attr(key: str, value: object) -> dict[str, object]:
    """One OTLP/JSON attribute of the value's type."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def two_span_trace(
    n: int,
    root_attributes: list[dict[str, object]],
    child_attributes: list[dict[str, object]] | None = None,
    *,
    child_error: bool | None = None,
) -> list[dict[str, object]]:
    """Trace ``n``: root ``request-n`` and its child ``chat``; the child's status is set
    only when ``child_error`` is given."""
    trace_id = f"{n:032x}"
    root: dict[str, object] = {
        "traceId": trace_id,
        "spanId": f"{n:015x}1",
        "name": f"request-{n}",
        "startTimeUnixNano": str(T0 + n * SEC),
        "endTimeUnixNano": str(T0 + n * SEC + SEC // 2),
        "attributes": root_attributes,
    }
    child: dict[str, object] = {
        "traceId": trace_id,
        "spanId": f"{n:015x}2",
        "parentSpanId": f"{n:015x}1",
        "name": "chat",
        "startTimeUnixNano": str(T0 + n * SEC + 1000),
        "endTimeUnixNano": str(T0 + n * SEC + SEC // 4),
    }
    if child_error is not None:
        child["status"] = {"code": 2 if child_error else 1}
    if child_attributes is not None:
        child["attributes"] = child_attributes
    return [root, child]


def chat_trace(n: int, prompt: str, answer: str) -> list[dict[str, object]]:
    """``two_span_trace(n)`` whose LLM span carries a user ``prompt`` (chat JSON) and ``answer``."""
    messages = json.dumps([{"role": "user", "content": prompt}])
    return two_span_trace(n, [], [attr("input.value", messages), attr("output.value", answer)])


def write_spans(engine: Engine, project_id: int, spans: list[dict[str, object]]) -> None:
    """Store ``spans`` (OTLP/JSON) as ingest would: decoded, normalised, one writer commit."""
    body = json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}).encode()
    writer = SpanWriter(engine)
    try:
        writer.write([prepare(project_id, body, Encoding.JSON, time.time_ns(), None).batch])
    finally:
        writer.close()
