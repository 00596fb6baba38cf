"""Posting hand-built OTLP/JSON spans to an app under test, as one export request."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient


def post_spans(client: TestClient, key: str, spans: list[dict[str, object]]) -> None:
    """Export ``spans`` with ``key`` and check the server took them."""
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    response = client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == 200, response.text
