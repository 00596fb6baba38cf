"""LLM-shaped synthetic OTLP traffic for tests, crash tests and benchmarks.

Each trace is a small agent step: a root span, a retrieval span and a chat span with
the OTel GenAI attributes and message payloads a real instrumentation would send.
"""

from __future__ import annotations

import json
import os
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-8b-instruct")


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_request(
    n_spans: int,
    *,
    rng: random.Random | None = None,
    start_ns: int | None = None,
    service: str = "bench-app",
) -> tuple[bytes, list[tuple[str, str]]]:
    """An encoded export of ``n_spans`` spans, and their (trace_id, span_id) pairs."""
    rng = rng or random.Random()
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", service), _kv("deployment.environment.name", "prod")])
    ss = rs.scope_spans.add()
    ss.scope.name = "watchkeep.synthetic"
    now = start_ns if start_ns is not None else time.time_ns()
    ids: list[tuple[str, str]] = []
    while len(ids) < n_spans:
        trace_id = os.urandom(16)
        root_id = os.urandom(8)
        model = rng.choice(MODELS)
        user = f"user-{rng.randint(1, 500)}"
        t0 = now + len(ids) * 1000
        question = f"Question {rng.randint(1, 10**6)}: what does the contract say about renewal terms?"
        specs = [
            ("handle-request", root_id, b"", 0),
            ("retrieve-documents", os.urandom(8), root_id, 1),
            (f"chat {model}", os.urandom(8), root_id, 2),
        ]
        for name, span_id, parent, role in specs[: n_spans - len(ids)]:
            span = Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=name,
                kind=Span.SPAN_KIND_INTERNAL if role != 2 else Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=t0 + role * 100_000,
                end_time_unix_nano=t0 + 400_000_000 + rng.randint(0, 10**8),
            )
            span.attributes.extend([_kv("watchkeep.user.id", user), _kv("watchkeep.session.id", f"s-{user}")])
            if role == 2:
                if rng.random() < 0.02:
                    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="rate limited"))
                span.attributes.extend(
                    [
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", "openai" if model.startswith("gpt") else "other"),
                        _kv("gen_ai.request.model", model),
                        _kv("gen_ai.response.model", model),
                        _kv("gen_ai.request.temperature", 0.2),
                        _kv("gen_ai.usage.input_tokens", rng.randint(50, 2000)),
                        _kv("gen_ai.usage.output_tokens", rng.randint(5, 500)),
                        KeyValue(
                            key="gen_ai.response.finish_reasons",
                            value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
                        ),
                        _kv(
                            "gen_ai.input.messages",
                            json.dumps([{"role": "user", "content": question}]),
                        ),
                        _kv(
                            "gen_ai.output.messages",
                            json.dumps([{"role": "assistant", "content": "The contract renews yearly."}]),
                        ),
                    ]
                )
            elif role == 1:
                span.attributes.extend([_kv("retrieval.documents", 4), _kv("db.system", "pgvector")])
            ss.spans.append(span)
            ids.append((trace_id.hex(), span_id.hex()))
    return request.SerializeToString(), ids


# Phoenix-shaped load (issue 17): every span an LLM call with about 800 characters of
# input and output messages, several calls a trace, as an agent framework exports them.
ENVIRONMENTS = ("prod", "staging")
USERS = 500
_WORDS = (
    "the contract renewal terms invoice refund policy order shipping delay account customer "
    "support ticket answer question summary document section clause payment period notice "
    "service level agreement warranty return product price discount quarter report review "
    "please explain why when how which what could would should tool call result retrieved "
    "context passage according to above below yearly monthly cancel upgrade plan premium"
)


def _sentences(rng: random.Random, n: int = 64) -> list[str]:
    """A pool of word-salad sentences: message text that compresses like prose, cheaply."""
    vocabulary = _WORDS.split()
    out = []
    for _ in range(n):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(6, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def _text(rng: random.Random, pool: list[str], chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < chars:
        s = rng.choice(pool)
        parts.append(s)
        size += len(s) + 1
    return " ".join(parts)[:chars]


def _messages(rng: random.Random, chars: int) -> tuple[list[KeyValue], list[KeyValue], list[KeyValue]]:
    """Pools of message attributes (system prompts, user turns, answers) of one export.

    A system prompt is shared by many calls, as in an application; turns and answers are
    drawn from pools of 128, built once an export: per-row compression sees each row
    alone, so the reuse does not make payloads compress better than real ones.
    """
    sentences = _sentences(rng)
    quarter = chars // 4
    systems = [
        _kv(
            "gen_ai.system_instructions",
            json.dumps([{"type": "text", "content": _text(rng, sentences, quarter)}]),
        )
        for _ in range(8)
    ]
    turns = [
        _kv(
            "gen_ai.input.messages", json.dumps([{"role": "user", "content": _text(rng, sentences, quarter)}])
        )
        for _ in range(128)
    ]
    answers = [
        _kv(
            "gen_ai.output.messages",
            json.dumps(
                [
                    {
                        "role": "assistant",
                        "content": _text(rng, sentences, chars - 2 * quarter),
                        "finish_reason": "stop",
                    }
                ]
            ),
        )
        for _ in range(128)
    ]
    return systems, turns, answers


def _model_attributes(model: str) -> list[KeyValue]:
    return [
        _kv("gen_ai.operation.name", "chat"),
        _kv("gen_ai.provider.name", "openai" if model.startswith("gpt") else "other"),
        _kv("gen_ai.request.model", model),
        _kv("gen_ai.response.model", model),
        _kv("gen_ai.request.temperature", 0.2),
        KeyValue(
            key="gen_ai.response.finish_reasons",
            value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")])),
        ),
    ]


_BY_MODEL = {m: _model_attributes(m) for m in MODELS}
_ERROR = Status(code=Status.STATUS_CODE_ERROR, message="rate limited")


def build_llm_request(
    n_spans: int,
    *,
    rng: random.Random,
    start_ns: int,
    step_ns: int = 1_000_000,
    message_chars: int = 800,
    release: str = "1.0.0",
    service: str = "bench-app",
) -> tuple[bytes, int]:
    """An encoded export of ``n_spans`` LLM spans starting at ``start_ns``, ``step_ns`` apart.

    Traces of 1-7 chat calls (a root call and its children), 500 users with a session
    each (every tenth user's spans carry SDK metadata ``customer`` = ``acct-<user / 10>``),
    the four ``MODELS``, ``ENVIRONMENTS`` as two resources, about 2 % errors, and
    ``message_chars`` characters of message text a span (a quarter system prompt, a quarter
    user turn, half the answer). Ids come from ``rng``, so a seed repeats the export
    exactly. Returns the body and the number of traces it opens.
    """
    if n_spans < 1 or step_ns < 0 or message_chars < 0:
        raise ValueError("n_spans must be positive, step_ns and message_chars not negative")
    systems, turns, answers = _messages(rng, message_chars)
    request = ExportTraceServiceRequest()
    scopes = []
    for env in ENVIRONMENTS:
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(
            [
                _kv("service.name", service),
                _kv("service.version", release),
                _kv("deployment.environment.name", env),
            ]
        )
        ss = rs.scope_spans.add()
        ss.scope.name = "openinference.instrumentation.openai"
        scopes.append(ss)
    made = traces = 0
    random_ = rng.random
    while made < n_spans:
        trace_id = rng.randbytes(16)
        scope = scopes[0] if random_() < 0.8 else scopes[1]
        user_number = int(random_() * USERS) + 1
        user = f"user-{user_number}"
        who = [
            _kv("watchkeep.user.id", user),
            _kv("watchkeep.session.id", f"session-{user}-{int(random_() * 4)}"),
        ]
        if user_number % 10 == 0:  # a tenth of the traces: SDK metadata, drawn from no random number
            who.append(_kv("watchkeep.metadata.customer", f"acct-{user_number // 10}"))
        system = systems[int(random_() * len(systems))]
        root = rng.randbytes(8)
        traces += 1
        for call in range(min(int(random_() * 7) + 1, n_spans - made)):
            t0 = start_ns + made * step_ns
            model = MODELS[int(random_() * len(MODELS))]
            span = Span(
                trace_id=trace_id,
                span_id=root if call == 0 else rng.randbytes(8),
                parent_span_id=b"" if call == 0 else root,
                name=f"chat {model}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=t0,
                end_time_unix_nano=t0 + 200_000_000 + int(random_() * 3_800_000_000),
                attributes=[
                    *who,
                    *_BY_MODEL[model],
                    _kv("gen_ai.usage.input_tokens", 50 + int(random_() * 1950)),
                    _kv("gen_ai.usage.output_tokens", 5 + int(random_() * 495)),
                    system,
                    turns[int(random_() * len(turns))],
                    answers[int(random_() * len(answers))],
                ],
            )
            if random_() < 0.02:
                span.status.CopyFrom(_ERROR)
            scope.spans.append(span)
            made += 1
    return request.SerializeToString(), traces
