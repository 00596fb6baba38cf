"""Targets on loopback: the mock upstream, a recording upstream, a live gateway; egress refusals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.eval_targets import Calls
from tests.support.eval_upstream import EvalUpstream
from tests.support.gateway import live_gateway, mock_upstream_args, process, project_of
from tests.support.servers import free_port

from watchkeep.evals.config import ConfigError
from watchkeep.evals.model import Case, GarbageReply, RateLimited, TargetError, TargetReply, TargetTimeout
from watchkeep.evals.targets import (
    CallableTarget,
    GatewayRouteTarget,
    OpenAICompatibleTarget,
    TargetCompleter,
    build_target,
)
from watchkeep.security.egress import AddressPolicy, EgressRefused

LOOPBACK = AddressPolicy.from_strings(["127.0.0.0/8"])
CASE = Case(
    item_key="k", messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"})
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The fast mock upstream (faults by path prefix)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(mock_upstream_args(port), ready_url=f"{url}/_stats"):
        yield url


def openai(base_url: str, policy: AddressPolicy = LOOPBACK, timeout_s: float = 5.0, **spec: Any) -> Any:
    return build_target(
        {"kind": "openai", "base_url": base_url, "model": "gpt-x", **spec}, egress=policy, timeout_s=timeout_s
    )


def call(target: Any, case: Case = CASE, params: dict[str, Any] | None = None, seed: int = 3) -> TargetReply:
    async def once() -> TargetReply:
        try:
            return await target.call(case, params or {}, seed=seed, traceparent=None)  # type: ignore[no-any-return]
        finally:
            await target.aclose()

    return asyncio.run(once())


def test_openai_target_against_the_mock_upstream(upstream: str) -> None:
    target = openai(f"{upstream}/v1")
    assert isinstance(target, OpenAICompatibleTarget)
    assert target.version == "openai:gpt-x@127.0.0.1"
    reply = call(target)
    assert reply.output == "The quick brown fox jumps over the lazy dog."
    assert (reply.input_tokens, reply.output_tokens) == (12, 9)
    assert reply.trace_id is not None
    assert reply.span_id is not None
    assert (reply.latency_ms or 0) > 0


@pytest.mark.parametrize(
    ("prefix", "error", "retryable"),
    [
        ("status-429", RateLimited, True),
        ("status-503", TargetError, True),
        ("status-404", TargetError, False),
        ("reset", TargetError, True),
    ],
)
def test_mock_upstream_faults_become_target_errors(
    upstream: str, prefix: str, error: type[Exception], retryable: bool
) -> None:
    with pytest.raises(error) as caught:
        call(openai(f"{upstream}/{prefix}/v1"))
    assert isinstance(caught.value, TargetError)
    assert caught.value.retryable is retryable
    if prefix == "status-429":
        assert isinstance(caught.value, RateLimited)
        assert caught.value.retry_after == 0


def test_a_slow_upstream_is_a_timeout(upstream: str) -> None:
    with pytest.raises(TargetTimeout):
        call(openai(f"{upstream}/slow-3000/v1", timeout_s=0.3))


def test_body_headers_usage_and_garbage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVAL_TEST_KEY", "sk-test-123")
    with EvalUpstream() as up:
        reply = call(
            openai(up.url(), api_key_env="EVAL_TEST_KEY", headers={"X-Team": "qa"}),
            params={"temperature": 0.1, "max_tokens": 20, "model": "ignored", "stream": True},
            seed=77,
        )
        assert (reply.output, reply.input_tokens, reply.output_tokens, reply.cost_usd) == (
            "hi there",
            7,
            2,
            0.003,
        )
        assert reply.model == "served-model"
        body, headers = up.bodies[-1], up.headers[-1]
        assert body["model"] == "gpt-x"
        assert body["seed"] == 77
        assert body["stream"] is False
        assert (body["temperature"], body["max_tokens"]) == (0.1, 20)
        assert body["messages"] == [dict(m) for m in CASE.messages]
        assert headers["authorization"] == "Bearer sk-test-123"
        assert headers["x-team"] == "qa"
        assert headers["traceparent"] == f"00-{reply.trace_id}-{reply.span_id}-01"
        with pytest.raises(GarbageReply, match="not JSON"):
            call(openai(up.url("garbage")))
        with pytest.raises(GarbageReply, match="larger than"):
            call(openai(up.url("huge")))
        with pytest.raises(GarbageReply, match="no choices"):
            call(openai(up.url("nochoices")))
        with pytest.raises(RateLimited) as limited:
            call(openai(up.url("429")))
        assert limited.value.retry_after == 7.0
        with pytest.raises(TargetError, match="upstream says no") as refused:
            call(openai(up.url("400")))
        assert refused.value.retryable is False


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/v1", "http://169.254.169.254/latest", "http://127.0.0.1:9/v1", "http://localhost/v1"],
)
def test_internal_addresses_are_refused_by_egress(url: str) -> None:
    with pytest.raises(EgressRefused):
        openai(url, policy=AddressPolicy())
    with pytest.raises(EgressRefused):
        build_target({"kind": "route", "route": "m", "url": url}, egress=AddressPolicy())


def test_a_name_resolving_to_an_internal_address_is_refused_at_connect() -> None:
    host = socket.gethostname()
    try:
        addresses = {i[4][0] for i in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if any(AddressPolicy().refusal(__import__("ipaddress").ip_address(a)) is None for a in addresses):
        pytest.skip("this machine's name resolves to a public address")
    with pytest.raises(TargetError, match="egress refused") as refused:
        call(openai(f"http://{host}:9/v1", policy=AddressPolicy()))
    assert refused.value.retryable is False


def test_callable_targets_sync_async_and_versions() -> None:
    Calls.reset()
    sync = build_target(
        {"kind": "python", "callable": "tests.support.eval_targets:echo"}, egress=AddressPolicy()
    )
    assert isinstance(sync, CallableTarget)
    assert sync.version == "python:tests.support.eval_targets:echo"
    assert call(sync, params={"temperature": 0}).output == "echo: hi"
    assert Calls.seen[-1][1] == {"temperature": 0, "seed": 3}
    rich = build_target(
        {"kind": "python", "callable": "tests.support.eval_targets:rich_echo", "version": "v7"},
        egress=AddressPolicy(),
    )
    assert rich.version == "v7"
    reply = call(rich)
    assert (reply.output, reply.cost_usd, reply.model) == ("HI", 0.01, "m1")
    with pytest.raises(ConfigError, match="cannot import"):
        build_target({"kind": "python", "callable": "tests.support.nowhere:f"}, egress=AddressPolicy())
    with pytest.raises(ConfigError, match="target"):
        build_target({"kind": "python", "callable": "not a path"}, egress=AddressPolicy())
    with pytest.raises(ConfigError, match="gateway"):
        build_target({"kind": "route", "route": "m"}, egress=AddressPolicy())


def test_target_completer_asks_the_target() -> None:
    Calls.reset()
    judge = TargetCompleter(
        build_target(
            {"kind": "python", "callable": "tests.support.eval_targets:echo"}, egress=AddressPolicy()
        )
    )
    assert asyncio.run(judge.complete([{"role": "user", "content": "grade"}], seed=5)) == "echo: grade"
    assert Calls.seen[-1][1] == {"temperature": 0, "seed": 5}


def test_route_target_through_a_live_gateway_joins_the_trace(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"routes": [{"name": "m", "deployments": [{"name": "a", "backend": "mock"}]}]}
    with live_gateway(tmp_path, database_url, config) as gw:
        monkeypatch.setenv("WATCHKEEP_API_KEY", gw.key)
        target = build_target({"kind": "route", "route": "m"}, egress=AddressPolicy(), gateway_url=gw.url)
        assert isinstance(target, GatewayRouteTarget)

        async def scenario() -> tuple[str, TargetReply]:
            try:
                version = await target.resolve_version()
                return version, await target.call(CASE, {"max_tokens": 5}, seed=1, traceparent=None)
            finally:
                await target.aclose()

        version, reply = asyncio.run(scenario())
        assert version.startswith("route:m@")
        assert len(version) == len("route:m@") + 12
        assert reply.output
        span = gw.wait_span(reply.trace_id or "")
        assert span["parent_span_id"] == reply.span_id
        assert project_of(gw)
