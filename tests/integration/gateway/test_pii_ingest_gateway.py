"""Gateway traffic is traced with PII masked: the stored prompt never holds the address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.support.gateway import live_gateway
from tests.support.payloads import span_payloads


def test_gateway_spans_store_the_prompt_masked(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_TEST_UPSTREAM_KEY", "sk-upstream")
    deployment = {
        "name": "up",
        "backend": "openai_compatible",
        "base_url": f"{upstream}/v1",
        "api_key_env": "WK_TEST_UPSTREAM_KEY",
        "model": "m",
    }
    config = {"routes": [{"name": "r", "deployments": [deployment]}]}
    with live_gateway(tmp_path, database_url, config, gateway_capture_content=True) as gw:
        body = {
            "model": "r",
            "messages": [{"role": "user", "content": "I am bob@example.com, SSN 123-45-6789"}],
        }
        answer = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=gw.auth, timeout=30)
        assert answer.status_code == 200, answer.text
        trace_id = answer.headers["x-watchkeep-trace-id"]
        span = gw.wait_span(trace_id)
        sent, _ = span_payloads(gw.url, gw.key, trace_id, span["span_id"])
    assert "bob@example.com" not in str(sent)
    assert "123-45-6789" not in str(sent)
    assert "[EMAIL]" in str(sent)
