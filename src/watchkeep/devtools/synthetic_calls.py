"""LLM calls with known distributions, written straight to the store.

Scenario tests (inject a shift, check it is found; run null trials, count false
alarms) and the monitoring benchmark need many spans whose truth is known; this
writes them through the same bulk writer ingest uses, bypassing OTLP decoding.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from watchkeep.store.rows import SPAN_COLUMNS, WriteBatch, summarise_traces
from watchkeep.store.span_writer import SpanWriter

TOPICS = {
    "contracts": "the contract renewal terms clause notice period termination liability",
    "cooking": "the recipe needs flour butter sugar oven bake minutes dough",
    "football": "the match ended with a late goal penalty striker league season",
}


@dataclass(slots=True)
class Traffic:
    """How generated calls are distributed."""

    models: dict[str, float] = field(default_factory=lambda: {"gpt-4o-mini": 0.7, "llama-3.1-8b": 0.3})
    latency_median_ms: float = 800.0
    latency_sigma: float = 0.4
    input_tokens_mean: float = 300.0
    output_tokens_mean: float = 120.0
    error_rate: float = 0.01
    response_words_mean: float = 40.0
    topic: str = "contracts"
    environment: str = "prod"
    release: str = "r1"
    route: str | None = None
    with_payloads: bool = True


def _words(rng: np.random.Generator, topic: str, n: int) -> str:
    vocab = TOPICS[topic].split()
    return " ".join(vocab[i] for i in rng.integers(0, len(vocab), max(1, n)))


def generate(
    project_id: int, n: int, start_ns: int, end_ns: int, traffic: Traffic, seed: int = 0
) -> WriteBatch:
    """``n`` single-span traces of LLM calls spread uniformly over [start, end)."""
    rng = np.random.default_rng(seed)
    names = list(traffic.models)
    probs = np.asarray([traffic.models[m] for m in names])
    model_idx = rng.choice(len(names), n, p=probs / probs.sum())
    starts = np.sort(rng.integers(start_ns, end_ns, n))
    latency = rng.lognormal(np.log(traffic.latency_median_ms), traffic.latency_sigma, n)
    tokens_in = rng.poisson(traffic.input_tokens_mean, n)
    tokens_out = rng.poisson(traffic.output_tokens_mean, n)
    errors = rng.random(n) < traffic.error_rate
    words = rng.poisson(traffic.response_words_mean, n)
    ids = os.urandom(24 * n)
    attrs = json.dumps({"watchkeep.route": traffic.route}) if traffic.route else None
    batch = WriteBatch()
    dict_rows: list[dict[str, Any]] = []
    for i in range(n):
        trace_id = ids[24 * i : 24 * i + 16].hex()
        span_id = ids[24 * i + 16 : 24 * i + 24].hex()
        start = int(starts[i])
        row = dict.fromkeys(SPAN_COLUMNS)
        row.update(
            project_id=project_id,
            trace_id=trace_id,
            span_id=span_id,
            name="chat",
            kind=3,
            status_code=2 if errors[i] else 1,
            start_time_unix_nano=start,
            end_time_unix_nano=start + int(latency[i] * 1e6),
            duration_ms=float(latency[i]),
            operation="chat",
            provider="openai",
            request_model=names[model_idx[i]],
            response_model=names[model_idx[i]],
            input_tokens=int(tokens_in[i]),
            output_tokens=int(tokens_out[i]),
            total_tokens=int(tokens_in[i] + tokens_out[i]),
            cost_usd=float(tokens_in[i] * 1e-7 + tokens_out[i] * 4e-7),
            time_to_first_token_ms=float(latency[i] * 0.3),
            finish_reason="stop",
            environment=traffic.environment,
            release=traffic.release,
            attributes=attrs,
            ingested_at_unix_nano=start,
        )
        dict_rows.append(row)
        batch.spans.append(tuple(row.values()))
        if traffic.with_payloads:
            answer = _words(rng, traffic.topic, int(words[i]))
            batch.payloads.append(
                (
                    project_id,
                    trace_id,
                    span_id,
                    json.dumps([{"role": "user", "content": "question"}]),
                    answer,
                    start,
                )
            )
    batch.traces = summarise_traces(dict_rows)
    return batch


def write(engine: Engine, batch: WriteBatch, chunk: int = 50_000) -> int:
    """Store ``batch`` in chunks; the number of new spans."""
    writer = SpanWriter(engine)
    total = 0
    traces = list(batch.traces.items())
    try:
        for i in range(0, len(batch.spans), chunk):
            part = WriteBatch(
                spans=batch.spans[i : i + chunk],
                payloads=batch.payloads[i : i + chunk],
                traces=dict(traces[i : i + chunk]),
            )
            total += writer.write([part])
    finally:
        writer.close()
    return total
