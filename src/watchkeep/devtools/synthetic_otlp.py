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
