"""Known LLM traces for the client and CLI read tests: trace ``n`` is a root ``request-n``
and a chat child with a model, tokens, cost, messages and trace attributes chosen per ``n``,
so a test can state exactly what each filter, page and export row holds."""

from __future__ import annotations

import time

import httpx

from tests.support.otlp_json import SEC, attr


def _tags(tags: list[str]) -> dict[str, object]:
    values = [{"stringValue": t} for t in tags]
    return {"key": "watchkeep.tags", "value": {"arrayValue": {"values": values}}}


def llm_trace(n: int, start_ns: int, *, error: bool = False) -> list[dict[str, object]]:
    """Trace ``n`` at ``start_ns``: user ``u{n%3}``, session ``s{n%2}``, environment ``dev``
    for n > 10 else ``prod``, release ``r{n%2}``, tags ``["t{n%2}", "all"]``, model
    ``gpt-4o`` for odd n else ``claude-3-5-haiku``, ``10n`` input and ``n`` output tokens,
    cost ``n/1000`` and the chat messages ``question n`` / ``answer n``."""
    trace_id = f"{n:032x}"
    root_attrs = [
        attr("watchkeep.user.id", f"u{n % 3}"),
        attr("watchkeep.session.id", f"s{n % 2}"),
        attr("watchkeep.environment", "dev" if n > 10 else "prod"),
        attr("watchkeep.release", f"r{n % 2}"),
        _tags([f"t{n % 2}", "all"]),
    ]
    chat_attrs = [
        attr("gen_ai.operation.name", "chat"),
        attr("gen_ai.provider.name", "openai"),
        attr("gen_ai.request.model", "gpt-4o" if n % 2 else "claude-3-5-haiku"),
        attr("gen_ai.usage.input_tokens", 10 * n),
        attr("gen_ai.usage.output_tokens", n),
        {"key": "watchkeep.cost_usd", "value": {"doubleValue": n / 1000}},
        attr("watchkeep.input", f"question {n}"),
        attr("watchkeep.output", f"answer {n}"),
    ]
    root: dict[str, object] = {
        "traceId": trace_id,
        "spanId": f"{n:015x}1",
        "name": f"request-{n}",
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + SEC // 2),
        "attributes": root_attrs,
    }
    chat: dict[str, object] = {
        "traceId": trace_id,
        "spanId": f"{n:015x}2",
        "parentSpanId": f"{n:015x}1",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(start_ns + 1000),
        "endTimeUnixNano": str(start_ns + SEC // 4),
        "attributes": chat_attrs,
        "status": {"code": 2 if error else 1},
    }
    return [root, chat]


def post_spans(url: str, api_key: str, spans: list[dict[str, object]]) -> None:
    """Send OTLP/JSON spans; a 200 means they are committed."""
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    response = httpx.post(
        f"{url}/v1/traces", json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )
    assert response.status_code == 200, response.text


def send_traces(url: str, api_key: str, ns: range, start_ns: int | None = None) -> int:
    """Traces ``ns`` one second apart from ``start_ns`` (default: a whole second a minute ago), every fifth
    with a failed chat span; returns the start of the first."""
    t0 = start_ns if start_ns is not None else (time.time_ns() // SEC - 60) * SEC
    spans: list[dict[str, object]] = []
    for n in ns:
        spans += llm_trace(n, t0 + n * SEC, error=n % 5 == 0)
    post_spans(url, api_key, spans)
    return t0
