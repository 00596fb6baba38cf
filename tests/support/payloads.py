"""What the server stored as a span's message payloads, read back through the trace API."""

from __future__ import annotations

from typing import Any

import httpx


def span_payloads(url: str, key: str, trace_id: str, span_id: str) -> tuple[Any, Any]:
    """The stored input and output of one span (``GET /api/v1/traces/{id}``, its tree)."""
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.get(f"{url}/api/v1/traces/{trace_id}", headers=headers, timeout=30)
    response.raise_for_status()
    nodes = list(response.json()["roots"])
    while nodes:
        node = nodes.pop()
        if node["span_id"] == span_id:
            return node["input"], node["output"]
        nodes += node.get("children") or []
    raise AssertionError(f"span {span_id} not in trace {trace_id}")


def message_text(messages: list[dict[str, Any]]) -> str:
    """The text of GenAI messages, whether in the ``parts`` shape or plain ``content``."""
    out = []
    for message in messages:
        parts = message.get("parts")
        if parts is None:
            out.append(str(message.get("content") or ""))
        else:
            out.extend(str(p.get("content") or "") for p in parts)
    return "".join(out)
