"""The metrics API against hand-built LLM calls whose latencies, TTFTs, tokens and costs are
known: the ``model_version``, ``prompt_version`` and ``release`` filters, and the p90,
time-to-first-token, token and cost values (percentiles are linear-interpolated, as
PostgreSQL's ``percentile_cont``, so ``numpy.percentile`` gives the expected value)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.support.apps import Api

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
N = 10


@dataclass(frozen=True)
class Call:
    n: int

    @property
    def duration_ms(self) -> float:
        return 100.0 * self.n + 7

    @property
    def ttft_ms(self) -> float:
        return 10.0 * self.n * self.n

    @property
    def input_tokens(self) -> int:
        return 100 + self.n

    @property
    def output_tokens(self) -> int:
        return 3 * self.n

    @property
    def cost(self) -> float:
        return 0.25 * self.n

    @property
    def model_version(self) -> str:
        return "v1" if self.n % 2 else "v2"

    @property
    def prompt_version(self) -> str:
        return "p-a" if self.n <= 4 else "p-b"

    @property
    def release(self) -> str:
        return "r1" if self.n <= 6 else "r2"


CALLS = [Call(n) for n in range(1, N + 1)]


def _attr(key: str, value: object) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(call: Call) -> dict[str, object]:
    start = T0 + call.n * 1000 * MS
    return {
        "traceId": f"{call.n:032x}",
        "spanId": f"{call.n:016x}",
        "name": "chat",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(call.duration_ms * MS)),
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.provider.name", "openai"),
            _attr("gen_ai.request.model", "gpt-4o"),
            _attr("gen_ai.usage.input_tokens", call.input_tokens),
            _attr("gen_ai.usage.output_tokens", call.output_tokens),
            _attr("watchkeep.cost_usd", call.cost),
            _attr("watchkeep.time_to_first_token_ms", call.ttft_ms),
            _attr("watchkeep.model.version", call.model_version),
            _attr("watchkeep.prompt.version", call.prompt_version),
            _attr("watchkeep.release", call.release),
        ],
    }


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


@pytest.fixture
def calls(api: Api) -> Api:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [_span(c) for c in CALLS]}]}]})
    response = api.client.post(
        "/v1/traces", content=body, headers={**api.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return api


def _summary(api: Api, **params: str) -> dict[str, float]:
    window = {"from": _iso(T0), "to": _iso(T0 + 3600 * 1000 * MS)}
    response = api.client.get("/api/v1/metrics", params={**window, **params}, headers=api.auth)
    assert response.status_code == 200, response.text
    return dict(response.json()["summary"])


def _expect(api: Api, chosen: list[Call], **params: str) -> None:
    s = _summary(api, **params)
    assert s["requests"] == len(chosen), params
    assert s["input_tokens"] == sum(c.input_tokens for c in chosen)
    assert s["output_tokens"] == sum(c.output_tokens for c in chosen)
    assert s["cost_usd"] == pytest.approx(sum(c.cost for c in chosen), rel=1e-9)
    durations = [c.duration_ms for c in chosen]
    ttfts = [c.ttft_ms for c in chosen]
    # duration comes from ns timestamps: exact to well under a microsecond
    for q in (50, 90, 99):
        assert s[f"latency_p{q}_ms"] == pytest.approx(np.percentile(durations, q), abs=1e-3), (q, params)
        assert s[f"ttft_p{q}_ms"] == pytest.approx(np.percentile(ttfts, q), abs=1e-6), (q, params)


def test_totals_and_percentiles_of_all_calls(calls: Api) -> None:
    _expect(calls, CALLS)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("model_version", "v1"),
        ("model_version", "v2"),
        ("prompt_version", "p-a"),
        ("prompt_version", "p-b"),
        ("release", "r1"),
        ("release", "r2"),
    ],
)
def test_version_and_release_filters(calls: Api, name: str, value: str) -> None:
    _expect(calls, [c for c in CALLS if getattr(c, name) == value], **{name: value})


def test_filters_combine_and_miss(calls: Api) -> None:
    both = [c for c in CALLS if c.model_version == "v2" and c.release == "r2"]
    _expect(calls, both, model_version="v2", release="r2")
    chosen = [c for c in CALLS if c.prompt_version == "p-b" and c.model_version == "v1" and c.release == "r1"]
    _expect(calls, chosen, prompt_version="p-b", model_version="v1", release="r1")
    empty = _summary(calls, release="r9")
    assert empty["requests"] == 0
    assert empty["cost_usd"] == 0


def test_a_series_ending_at_the_last_representable_time(calls: Api) -> None:
    """A window ending past 2262 is clamped to 2^63 - 1 ns; its last bucket's own end lies
    beyond that, which PostgreSQL's bigint arithmetic refused with a 500 (schemathesis)."""
    params = {"to": "5268-08-15T22:16:12Z", "bucket_seconds": "398"}
    response = calls.client.get("/api/v1/metrics", params=params, headers=calls.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["series"]) == 10  # an hour in buckets of 398 s
    assert body["summary"]["requests"] == 0
