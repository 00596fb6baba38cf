"""Map decoded spans onto span rows: hot fields into typed columns, messages apart.

The OTel GenAI conventions (current and older names), OpenInference and OpenLLMetry
spell the same facts differently; the key lists in ``watchkeep.semconv`` decide which
name wins. Mapped attributes leave the JSON ``attributes`` column, message content goes
to the payload row only, trace-level attributes found on any span of a trace are copied
onto its other spans in the same export, and every value is clipped to what the column
holds, so nothing a client sends can make the database refuse the batch.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

from watchkeep import semconv as sc
from watchkeep.ingest.decoded import Attributes, DecodedEvent, DecodedExport, DecodedSpan
from watchkeep.ingest.pricing import PriceTable
from watchkeep.store.rows import (
    SPAN_COLUMNS,
    TRACE_ATTRIBUTE_COLUMNS,
    WriteBatch,
    metadata_rows,
    summarise_traces,
)

_MAX_INT = 1 << 62
_MAX_TIME = (1 << 63) - 1
_INPUT_EVENTS = frozenset(
    {
        sc.EVENT_GEN_AI_SYSTEM_MESSAGE,
        sc.EVENT_GEN_AI_USER_MESSAGE,
        sc.EVENT_GEN_AI_ASSISTANT_MESSAGE,
        sc.EVENT_GEN_AI_TOOL_MESSAGE,
    }
)
_FIRST_TOKEN_EVENTS = frozenset({sc.WK_FIRST_TOKEN_EVENT, sc.OI_FIRST_TOKEN_EVENT, "first_token"})
_INDEXED_PREFIXES = (
    (sc.GEN_AI_PROMPT_PREFIX, "input", ""),
    (sc.GEN_AI_COMPLETION_PREFIX, "output", ""),
    (sc.OI_INPUT_MESSAGES_PREFIX, "input", "message."),
    (sc.OI_OUTPUT_MESSAGES_PREFIX, "output", "message."),
)


def clean_text(value: str, limit: int | None = None) -> str:
    """``value`` without NUL characters (PostgreSQL refuses them), clipped to ``limit``."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value


def to_json(value: Any) -> str:
    """Compact JSON text safe for SQLite TEXT and PostgreSQL JSONB."""
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode("utf-8")
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    return text


def _text(value: Any, limit: int) -> str | None:
    # clean_text inlined: this runs a dozen times a span (a NUL becomes one character,
    # so clipping before or after replacing gives the same text)
    if value is None:
        return None
    if type(value) is not str:
        value = str(value)
    if len(value) > limit:
        value = value[:limit]
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value or None


def _count(value: Any) -> int | None:
    if type(value) is int:  # the usual case; bool is not int here
        return value if 0 <= value < _MAX_INT else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < _MAX_INT else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _tags(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                value = [stripped]
        else:
            value = [t.strip() for t in stripped.split(",") if t.strip()]
    if not isinstance(value, list):
        value = [value]
    tags = sorted({clean_text(str(t), 128) for t in value if t is not None})[:64]
    return to_json(tags) if tags else None


def payload_text(value: Any) -> str:
    """JSON text for a payload; JSON-looking strings are kept verbatim (no re-encode)."""
    if isinstance(value, str):
        head = value[:1]
        if head.isspace():
            head = value.lstrip()[:1]
        if head in ("[", "{"):
            return clean_text(value)
    return to_json(value)


def _indexed_messages(attrs: Attributes) -> dict[str, list[dict[str, Any]]]:
    """Collect ``prefix.N.field`` attributes into ordered message lists, removing them."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key in [
        k for k in attrs if k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.in", "llm.out"))
    ]:
        for prefix, side, inner in _INDEXED_PREFIXES:
            if not key.startswith(prefix):
                continue
            index, _, rest = key[len(prefix) :].partition(".")
            if not (index.isascii() and index.isdigit() and len(index) <= 6):
                break
            if inner and rest.startswith(inner):
                rest = rest[len(inner) :]
            found.setdefault(side, {}).setdefault(int(index), {})[rest] = attrs.pop(key)
            break
    return {side: [msgs[i] for i in sorted(msgs)] for side, msgs in found.items()}


# Every mapped field and the attribute names that feed it, best first.
_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "operation": (sc.GEN_AI_OPERATION_NAME,),
    "oi_kind": (sc.OI_SPAN_KIND,),
    "request_type": (sc.LLM_REQUEST_TYPE,),
    "oi_model": (sc.OI_LLM_MODEL_NAME,),
    "request_model": (sc.GEN_AI_REQUEST_MODEL,),
    "response_model": (sc.GEN_AI_RESPONSE_MODEL,),
    "input_tokens": sc.INPUT_TOKEN_KEYS,
    "output_tokens": sc.OUTPUT_TOKEN_KEYS,
    "total_tokens": sc.TOTAL_TOKEN_KEYS,
    "cost": sc.COST_KEYS,
    "finish": (sc.GEN_AI_RESPONSE_FINISH_REASONS,),
    "ttft_ms": (sc.WK_TIME_TO_FIRST_TOKEN_MS,),
    "server_ttft_s": (sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,),
    "provider": sc.PROVIDER_KEYS,
    "user_id": sc.USER_ID_KEYS,
    "session_id": sc.SESSION_ID_KEYS,
    "environment": sc.ENVIRONMENT_KEYS,
    "release": sc.RELEASE_KEYS,
    "tags": sc.TAGS_KEYS,
    "prompt_name": (sc.WK_PROMPT_NAME,),
    "prompt_version": sc.PROMPT_VERSION_KEYS,
    "model_version": (sc.WK_MODEL_VERSION,),
    "input": (sc.GEN_AI_INPUT_MESSAGES, sc.WK_INPUT, sc.GEN_AI_PROMPT),
    "output": (sc.GEN_AI_OUTPUT_MESSAGES, sc.WK_OUTPUT, sc.GEN_AI_COMPLETION),
    "system": (sc.GEN_AI_SYSTEM_INSTRUCTIONS,),
    "oi_input": (sc.OI_INPUT_VALUE,),
    "oi_output": (sc.OI_OUTPUT_VALUE,),
}
_KEY_FIELD: dict[str, tuple[str, int]] = {
    key: (name, rank) for name, keys in _FIELD_KEYS.items() for rank, key in enumerate(keys)
}
_INDEXED_HEADS = tuple(prefix for prefix, _, _ in _INDEXED_PREFIXES)


def split_attributes(attrs: Attributes) -> tuple[dict[str, Any], Attributes]:
    """One pass over ``attrs``: the mapped fields (best name wins) and everything else."""
    found: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    rest: Attributes = {}
    get = _KEY_FIELD.get
    for key, value in attrs.items():
        spec = get(key)
        if spec is None:
            rest[key] = value
        elif value is not None and value != "":
            name, rank = spec
            if not rank:  # a field's best name: nothing can replace it
                found[name] = value
                if name in ranks:  # (a later worse name must not replace it either)
                    ranks[name] = 0
            elif name not in found or rank < ranks.get(name, 0):
                found[name] = value
                ranks[name] = rank
    return found, rest


@dataclass(frozen=True, slots=True)
class _ResourceFacts:
    """What a resource contributes to each of its spans, computed once per export: its
    trace attributes (user, session, environment, release, tags) already as column text."""

    id: str | None
    json: str | None
    service_name: str | None
    user_id: str | None
    session_id: str | None
    environment: str | None
    release: str | None
    tags: str | None


def _resource_facts(res: Attributes) -> _ResourceFacts:
    found, _ = split_attributes(res)
    release = found.get("release")
    if release is None and res.get(sc.SERVICE_VERSION):
        release = res[sc.SERVICE_VERSION]
    text = to_json(res) if res else None
    return _ResourceFacts(
        id=hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest() if text else None,
        json=text,
        service_name=_text(res.get(sc.SERVICE_NAME), 256),
        user_id=_text(found.get("user_id"), 256),
        session_id=_text(found.get("session_id"), 256),
        environment=_text(found.get("environment"), 128),
        release=_text(release, 128),
        tags=_tags(found.get("tags")),
    )


_TRACE_FROM, _TRACE_TO = SPAN_COLUMNS.index("user_id"), SPAN_COLUMNS.index("tags") + 1
if SPAN_COLUMNS[_TRACE_FROM:_TRACE_TO] != TRACE_ATTRIBUTE_COLUMNS:
    raise RuntimeError("the trace attribute columns must be adjacent in SPAN_COLUMNS")


class SpanNormaliser:
    """Turns one decoded export into rows for ``SpanWriter``."""

    def __init__(self, prices: PriceTable) -> None:
        self._prices = prices

    def normalise(self, project_id: int, export: DecodedExport, now_ns: int) -> WriteBatch:
        """Rows for every valid span; spans with out-of-range times are rejected."""
        batch = WriteBatch()
        rows: list[list[Any]] = []
        resources: dict[int, _ResourceFacts] = {}  # resource dicts are shared by their spans
        for span in export.spans:
            if span.start_time_unix_nano > _MAX_TIME or span.end_time_unix_nano > _MAX_TIME:
                export.reject(f"span {span.span_id} has a timestamp out of range")
                continue
            facts = resources.get(id(span.resource))
            if facts is None:
                facts = resources[id(span.resource)] = _resource_facts(span.resource)
                if facts.id is not None:
                    batch.resources[(project_id, facts.id)] = (project_id, facts.id, facts.json, now_ns)
            row, payload, meta = self._row(project_id, span, now_ns, facts)
            rows.append(row)
            if meta:
                batch.metadata.extend(meta)
            if payload is not None:
                batch.payloads.append(payload)
        _share_trace_attributes(rows)
        batch.spans = [tuple(r) for r in rows]
        batch.traces = summarise_traces(batch.spans)
        return batch

    def _row(
        self, project_id: int, span: DecodedSpan, now_ns: int, res: _ResourceFacts
    ) -> tuple[list[Any], tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        """The span's row (a list in ``SPAN_COLUMNS`` order), payload and metadata rows."""
        found, rest = split_attributes(span.attributes)
        f = found.get
        operation = f("operation")
        if operation is None:
            oi_kind = f("oi_kind")
            if isinstance(oi_kind, str):
                operation = sc.OPENINFERENCE_KIND_TO_OPERATION.get(oi_kind.upper(), oi_kind.lower())
            else:
                operation = f("request_type")
        oi_model = f("oi_model")
        request_model = _text(f("request_model") or oi_model, 256)
        if request_model is None:
            request_model = _model_from_invocation(rest.get(sc.OI_LLM_INVOCATION_PARAMETERS))
        response_model = _text(f("response_model") or oi_model, 256)
        input_tokens = _count(f("input_tokens"))
        output_tokens = _count(f("output_tokens"))
        total_tokens = _count(f("total_tokens"))
        if total_tokens is None and (input_tokens is not None or output_tokens is not None):
            total_tokens = (input_tokens or 0) + (output_tokens or 0)
        cost = _number(f("cost"))
        if cost is None:
            cost = self._prices.cost(response_model or request_model, input_tokens, output_tokens)
        finish = f("finish")
        if isinstance(finish, list):
            finish = finish[0] if finish else None
        ttft = _number(f("ttft_ms"))
        if ttft is None:
            server_ttft = _number(f("server_ttft_s"))
            if server_ttft is not None:
                ttft = server_ttft * 1000.0
            elif span.events:
                ttft = _first_token_ms(span)
        input_payload, output_payload, events = _payloads(found, rest, span.events)
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        user_id, session_id, environment = f("user_id"), f("session_id"), f("environment")
        release, tags = f("release"), f("tags")
        name = span.name
        row = [
            project_id,
            span.trace_id,
            span.span_id,
            span.parent_span_id,
            name if len(name) <= 1024 and "\x00" not in name else clean_text(name, 1024),
            span.kind if 0 <= span.kind <= 5 else 0,
            span.status_code if 0 <= span.status_code <= 2 else 0,
            _text(span.status_message, 4096),
            start,
            end,
            (end - start) / 1e6,
            res.service_name,
            _text(operation, 64),
            _text(f("provider"), 128),
            request_model,
            response_model,
            input_tokens,
            output_tokens,
            total_tokens,
            cost,
            ttft,
            _text(finish, 64),
            # the span's own value when it has one, else its resource's
            _text(user_id, 256) if user_id else res.user_id,
            _text(session_id, 256) if session_id else res.session_id,
            _text(environment, 128) if environment else res.environment,
            _text(release, 128) if release else res.release,
            _tags(tags) if tags else res.tags,
            _text(f("prompt_name"), 256),
            _text(f("prompt_version"), 128),
            _text(f("model_version"), 128),
            to_json(rest) if rest else None,
            res.id,
            to_json(events) if events else None,
            now_ns,
        ]
        payload = None
        if input_payload is not None or output_payload is not None:
            payload = (project_id, span.trace_id, span.span_id, input_payload, output_payload, now_ns)
        meta = metadata_rows(project_id, span.trace_id, span.span_id, start, rest) if rest else []
        return row, payload, meta


def _model_from_invocation(params: Any) -> str | None:
    if isinstance(params, str) and '"model"' in params:
        try:
            parsed = orjson.loads(params)
        except orjson.JSONDecodeError:
            return None
        model = parsed.get("model") if isinstance(parsed, dict) else None
        return _text(model, 256) if isinstance(model, str) else None
    return None


def event_message(name: str, fields: Attributes) -> tuple[str, Any] | None:
    """The side ("input" or "output") and message of a GenAI event, None for other events.

    Span events carry the message as attributes, OTLP log records as their body: both
    arrive here as ``fields``, so either way a span gets the same payload.
    """
    if name in _INPUT_EVENTS:
        return "input", {"role": name.split(".")[1], **fields}
    if name == sc.EVENT_GEN_AI_CHOICE:
        return "output", fields
    if name == sc.EVENT_GEN_AI_CONTENT_PROMPT:
        return "input", fields.get(sc.GEN_AI_PROMPT, fields)
    if name == sc.EVENT_GEN_AI_CONTENT_COMPLETION:
        return "output", fields.get(sc.GEN_AI_COMPLETION, fields)
    return None


def _payloads(
    found: dict[str, Any], rest: Attributes, events: list[DecodedEvent]
) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """Input and output payload text, and the events that are not message content."""
    inputs: Any = found.get("input")
    outputs: Any = found.get("output")
    system = found.get("system")
    if inputs is None or outputs is None:
        indexed = _indexed_messages(rest) if rest else {}
        if inputs is None:
            inputs = indexed.get("input") or found.get("oi_input")
        if outputs is None:
            outputs = indexed.get("output") or found.get("oi_output")
    kept: list[dict[str, Any]] = []
    if events:  # most spans have none
        event_inputs: list[Any] = []
        event_outputs: list[Any] = []
        for ev in events:
            message = event_message(ev.name, ev.attributes)
            if message is None:
                kept.append(
                    {"time_unix_nano": ev.time_unix_nano, "name": ev.name, "attributes": ev.attributes}
                )
            elif message[0] == "input":
                event_inputs.append(message[1])
            else:
                event_outputs.append(message[1])
        if inputs is None and event_inputs:
            inputs = event_inputs
        if outputs is None and event_outputs:
            outputs = event_outputs
    if system is not None:
        inputs = (
            {"system_instructions": system}
            if inputs is None
            else {"system_instructions": system, "messages": inputs}
        )
    return (
        None if inputs is None else payload_text(inputs),
        None if outputs is None else payload_text(outputs),
        kept,
    )


def _first_token_ms(span: DecodedSpan) -> float | None:
    for ev in span.events:
        if ev.name in _FIRST_TOKEN_EVENTS and ev.time_unix_nano >= span.start_time_unix_nano:
            return (ev.time_unix_nano - span.start_time_unix_nano) / 1e6
    return None


def _share_trace_attributes(rows: list[list[Any]]) -> None:
    """Copy user, session, environment, release and tags across spans of one trace: each
    column's first value in the export fills the spans of that trace that lack one."""
    lo, hi = _TRACE_FROM, _TRACE_TO
    known: dict[str, list[Any]] = {}
    for row in rows:
        seen = known.get(row[1])
        if seen is None:
            known[row[1]] = row[lo:hi]
        elif None in seen and seen != row[lo:hi]:  # the spans of a trace usually agree
            for i, value in enumerate(row[lo:hi]):
                if seen[i] is None:
                    seen[i] = value
    for row in rows:
        part, seen = row[lo:hi], known[row[1]]
        if part != seen and None in part:
            row[lo:hi] = [s if v is None else v for v, s in zip(part, seen, strict=True)]
