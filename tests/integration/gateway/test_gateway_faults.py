"""Fault injection against real upstream processes: fallbacks hide failures, breakers open and close."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.support.gateway import LiveGateway, chat, live_gateway

from watchkeep.gateway.routing import GLOBAL

FAST_RETRY = {"attempts": 1, "backoff_s": 0.01, "backoff_max_s": 0.02}


class ManualClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _dep(name: str, upstream: str, prefix: str = "", timeout: float = 5.0) -> dict[str, Any]:
    return {
        "name": name,
        "backend": "openai_compatible",
        "base_url": f"{upstream}{prefix}/v1",
        "timeout_s": timeout,
    }


def _route(primary: dict[str, Any], *fallbacks: dict[str, Any], **policy: Any) -> dict[str, Any]:
    return {
        "routes": [
            {
                "name": "m",
                "deployments": [primary],
                "fallbacks": list(fallbacks),
                "retry": FAST_RETRY,
                **policy,
            }
        ]
    }


def _attempts(gw: LiveGateway, response: httpx.Response) -> list[str]:
    span = gw.wait_span(response.headers["x-watchkeep-trace-id"])
    return [
        f"{a['deployment']}:{a['outcome']}"
        for a in json.loads(span["attributes"]["watchkeep.gateway.attempts"])
    ]


@pytest.mark.parametrize(
    ("prefix", "outcome"),
    [("/status-500", "status_500"), ("/slow-3000", "timeout"), ("/reset", "connection_error")],
    ids=["500", "timeout", "reset"],
)
def test_a_failing_primary_falls_back_without_a_client_visible_error(
    tmp_path: Path, sqlite_url: str, upstream: str, prefix: str, outcome: str
) -> None:
    config = _route(_dep("bad", upstream, prefix, timeout=0.3), _dep("good", upstream))
    with live_gateway(tmp_path, sqlite_url, config) as gw, gw.http() as client:
        response = client.post("/v1/chat/completions", json=chat())
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"].startswith("The quick brown fox")
        assert _attempts(gw, response) == [f"bad:{outcome}", f"bad:{outcome}", "good:ok"]
        span = gw.wait_span(response.headers["x-watchkeep-trace-id"])
        assert span["attributes"]["watchkeep.gateway.retries"] == 1
        assert span["attributes"]["watchkeep.gateway.fallbacks"] == 1
        assert span["attributes"]["watchkeep.deployment"] == "good"


def test_a_stalled_stream_falls_back_before_the_first_token(
    tmp_path: Path, sqlite_url: str, upstream: str
) -> None:
    slow_first = _dep("stall", upstream, "/slow-3000", timeout=0.3)
    with live_gateway(tmp_path, sqlite_url, _route(slow_first, _dep("good", upstream))) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(**chat(), stream=True)
            if c.choices
        )
        assert text == "The quick brown fox jumps over the lazy dog."


def test_a_stream_that_stalls_midway_ends_with_an_error_event(
    tmp_path: Path, sqlite_url: str, upstream: str
) -> None:
    with live_gateway(tmp_path, sqlite_url, _route(_dep("stall", upstream, "/stall", timeout=0.3))) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
        seen: list[str] = []

        def read_all() -> None:
            for chunk in client.chat.completions.create(**chat(), stream=True):
                seen.extend(c.delta.content or "" for c in chunk.choices)

        with pytest.raises(openai.APIError, match="stalled"):
            read_all()
        assert seen == ["The"]


@pytest.mark.parametrize(
    ("prefix", "status", "code"),
    [("/status-503", 502, "upstream_error"), ("/slow-3000", 504, "upstream_timeout")],
    ids=["502", "504"],
)
def test_no_deployment_left_is_an_openai_style_error(
    tmp_path: Path, sqlite_url: str, upstream: str, prefix: str, status: int, code: str
) -> None:
    with live_gateway(tmp_path, sqlite_url, _route(_dep("only", upstream, prefix, timeout=0.3))) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(**chat())
    assert caught.value.status_code == status
    assert caught.value.body["code"] == code  # type: ignore[index]


def test_the_breaker_opens_on_failures_and_closes_after_recovery(
    tmp_path: Path, sqlite_url: str, upstream: str
) -> None:
    """The breaker's clock is the test's: it stays open until the test moves time on, so
    no step depends on how fast a loaded machine gets from one request to the next."""
    switch = "/switch-breaker-test"
    config = _route(
        _dep("flaky", upstream, switch),
        _dep("spare", upstream),
        breaker={"failure_threshold": 2, "reset_timeout_s": 30},
    )
    httpx.post(f"{upstream}/_control/breaker-test/fail")
    with live_gateway(tmp_path, sqlite_url, config) as gw, gw.http() as client:
        route = gw.app.state.services.gateway.table.resolve(GLOBAL, "m")
        clock = ManualClock()
        route.primaries[0].breaker.clock = clock
        first = client.post("/v1/chat/completions", json=chat())
        assert first.status_code == 200
        assert _attempts(gw, first) == ["flaky:status_500", "flaky:status_500", "spare:ok"]
        assert client.get("/api/v1/routes/m").json()["breakers"]["flaky"] == "open"
        clock.now += 29.9
        skipped = client.post("/v1/chat/completions", json=chat("again"))
        assert skipped.status_code == 200
        assert _attempts(gw, skipped) == ["flaky:breaker_open", "spare:ok"]
        httpx.post(f"{upstream}/_control/breaker-test/ok")
        clock.now += 0.1
        assert client.get("/api/v1/routes/m").json()["breakers"]["flaky"] == "half_open"
        probe = client.post("/v1/chat/completions", json=chat("probe"))
        assert _attempts(gw, probe) == ["flaky:ok"]
        assert client.get("/api/v1/routes/m").json()["breakers"]["flaky"] == "closed"
        metrics = gw.app.state.services.registry
    assert metrics.get_sample_value("watchkeep_gateway_breaker_open", {"deployment": "m/flaky"}) == 0.0


def test_a_client_that_disconnects_mid_stream_cancels_the_upstream(
    tmp_path: Path, sqlite_url: str, upstream: str
) -> None:
    with live_gateway(tmp_path, sqlite_url, _route(_dep("slow", upstream, "/stall", timeout=30))) as gw:
        before = httpx.get(f"{upstream}/_stats").json()["aborted_streams"]
        with gw.http() as client, client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
            assert r.status_code == 200
            next(r.iter_lines())  # the first chunk arrived; now hang up
        deadline = time.monotonic() + 20
        while httpx.get(f"{upstream}/_stats").json()["aborted_streams"] == before:
            assert time.monotonic() < deadline, "the upstream stream was never cancelled"
            time.sleep(0.05)
