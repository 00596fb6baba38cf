"""Cost on gateway spans: tokens times the price table's price for a priced model, and no
cost at all (null, not 0) for a model the table does not know."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from tests.support.gateway import live_gateway

from watchkeep.ingest.pricing import PriceTable


def _route(name: str, upstream: str, model: str) -> dict[str, object]:
    deployment = {
        "name": f"{name}-up",
        "backend": "openai_compatible",
        "base_url": f"{upstream}/v1",
        "api_key_env": "WK_TEST_UPSTREAM_KEY",
        "model": model,
    }
    return {"name": name, "deployments": [deployment]}


def test_priced_model_costs_tokens_times_price_and_unknown_has_none(
    tmp_path: Path, database_url: str, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_TEST_UPSTREAM_KEY", "sk-upstream")
    routes = [_route("priced", upstream, "gpt-4o-mini"), _route("unpriced", upstream, "in-house-model-7")]
    with live_gateway(tmp_path, database_url, {"routes": routes}) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
        spans = {}
        for route in ("priced", "unpriced"):
            raw = client.chat.completions.with_raw_response.create(
                model=route, messages=[{"role": "user", "content": "hi"}]
            )
            usage = raw.parse().usage
            assert usage is not None
            spans[route] = (gw.wait_span(raw.headers["x-watchkeep-trace-id"]), usage)
    price = PriceTable.load().lookup("gpt-4o-mini")
    assert price is not None
    assert (price.input, price.output) == (0.15, 0.60)
    priced, usage = spans["priced"]
    assert (priced["input_tokens"], priced["output_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    expected = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6
    assert expected > 0
    assert priced["cost_usd"] == pytest.approx(expected, rel=1e-9)
    unpriced, usage = spans["unpriced"]
    assert unpriced["response_model"] == "in-house-model-7"
    assert unpriced["input_tokens"] == usage.prompt_tokens > 0
    assert unpriced["cost_usd"] is None
