"""Named, typed fields for ``update_current`` / ``span.update``, mapped onto semconv names.

One table maps every user-facing field onto its attribute, so the decorator, the
context manager and the instrumentations all write the same names. Payloads (inputs,
outputs, messages) stay Python objects on our own spans and are serialised by the
export thread; on a foreign OpenTelemetry span they are serialised at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, cast

from opentelemetry import trace

from watchkeep import semconv
from watchkeep.sdk.payload import dumps, genai_messages
from watchkeep.sdk.spans import SpanRecord, string_tuple
from watchkeep.sdk.trace_context import scalar


class SpanUpdate(TypedDict, total=False):
    """Fields accepted by ``update_current``; every one is optional."""

    name: str
    input: Any
    output: Any
    input_messages: Sequence[Any]
    output_messages: Sequence[Any]
    operation: str
    provider: str
    model: str
    response_model: str
    response_id: str
    input_tokens: int
    output_tokens: int
    finish_reasons: Sequence[str]
    temperature: float
    max_tokens: int
    top_p: float
    time_to_first_token_ms: float
    cost_usd: float
    user_id: str
    session_id: str
    tags: Sequence[str]
    metadata: Mapping[str, Any]
    prompt_name: str
    prompt_version: str | int
    model_version: str
    kind: str
    attributes: Mapping[str, Any]


SCALAR_FIELDS: Mapping[str, str] = {
    "operation": semconv.GEN_AI_OPERATION_NAME,
    "provider": semconv.GEN_AI_PROVIDER_NAME,
    "model": semconv.GEN_AI_REQUEST_MODEL,
    "response_model": semconv.GEN_AI_RESPONSE_MODEL,
    "response_id": semconv.GEN_AI_RESPONSE_ID,
    "input_tokens": semconv.GEN_AI_USAGE_INPUT_TOKENS,
    "output_tokens": semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "time_to_first_token_ms": semconv.WK_TIME_TO_FIRST_TOKEN_MS,
    "cost_usd": semconv.WK_COST_USD,
    "user_id": semconv.WK_USER_ID,
    "session_id": semconv.WK_SESSION_ID,
    "prompt_name": semconv.WK_PROMPT_NAME,
    "prompt_version": semconv.WK_PROMPT_VERSION,
    "model_version": semconv.WK_MODEL_VERSION,
    "kind": semconv.WK_SPAN_KIND,
}

# field -> (attribute, is a chat message list)
PAYLOAD_FIELDS: Mapping[str, tuple[str, bool]] = {
    "input": (semconv.WK_INPUT, False),
    "output": (semconv.WK_OUTPUT, False),
    "input_messages": (semconv.GEN_AI_INPUT_MESSAGES, True),
    "output_messages": (semconv.GEN_AI_OUTPUT_MESSAGES, True),
}

_SCALARS = frozenset({str, int, float, bool})

_ARRAY_FIELDS: Mapping[str, str] = {
    "finish_reasons": semconv.GEN_AI_RESPONSE_FINISH_REASONS,
    "tags": semconv.WK_TAGS,
}


def apply_update(span: trace.Span, fields: SpanUpdate, *, capture_content: bool, max_chars: int) -> None:
    """Write ``fields`` onto ``span``; content fields are skipped when capture is off."""
    record = span if type(span) is SpanRecord else None
    set_attribute = record.attributes.__setitem__ if record is not None else span.set_attribute
    for field, value in cast(Mapping[str, Any], fields).items():
        if value is None:
            continue
        key = SCALAR_FIELDS.get(field)
        if key is not None:
            set_attribute(key, value if type(value) in _SCALARS else scalar(value))
        elif field in PAYLOAD_FIELDS:
            if not capture_content:
                continue
            key, messages = PAYLOAD_FIELDS[field]
            if record is not None:
                record.set_payload(key, value, messages=messages)
            else:
                span.set_attribute(key, dumps(genai_messages(value) if messages else value, max_chars))
        elif field in _ARRAY_FIELDS:
            set_attribute(_ARRAY_FIELDS[field], string_tuple(value))
        elif field == "metadata":
            for meta_key, meta_value in value.items():
                span.set_attribute(semconv.WK_METADATA_PREFIX + str(meta_key), scalar(meta_value))
        elif field == "attributes":
            span.set_attributes(value)
        elif field == "name":
            span.update_name(str(value))
