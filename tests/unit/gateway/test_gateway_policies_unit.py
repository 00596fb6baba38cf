"""Rate-limit buckets, the response cache, request validation and route-file validation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from watchkeep.gateway.cache import ResponseCache, cache_key, deployment_identity
from watchkeep.gateway.config import DeploymentSpec, GatewayConfig, LimitSpec
from watchkeep.gateway.errors import GatewayError
from watchkeep.gateway.protocol import parse_chat, parse_embeddings
from watchkeep.gateway.ratelimit import LocalRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_request_bucket_refills_continuously() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    limits = LimitSpec(requests_per_minute=60)

    async def admitted(n: int) -> list[bool]:
        return [await limiter.admit("k", limits) is None for _ in range(n)]

    assert asyncio.run(admitted(61)) == [True] * 60 + [False]
    clock.now += 1.0  # one request's worth at 60/min
    assert asyncio.run(admitted(2)) == [True, False]
    refusal = asyncio.run(limiter.admit("k", limits))
    assert refusal is not None
    assert refusal.limit == "requests"
    assert 0 < refusal.retry_after <= 1.0
    assert asyncio.run(limiter.admit("other", limits)) is None


def test_token_bucket_is_charged_after_use_and_may_go_negative() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(clock)
    limits = LimitSpec(tokens_per_minute=600)
    assert asyncio.run(limiter.admit("k", limits)) is None
    asyncio.run(limiter.charge("k", limits, 900))
    refusal = asyncio.run(limiter.admit("k", limits))
    assert refusal is not None
    assert refusal.limit == "tokens"
    clock.now += 31  # 310 tokens back: 10 in the bucket
    assert asyncio.run(limiter.admit("k", limits)) is None


def test_cache_is_bounded_expires_and_keys_on_version() -> None:
    clock = Clock()
    cache = ResponseCache(max_entries=2, max_bytes=10_000, clock=clock)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    ids = [deployment_identity("m", DeploymentSpec(name="a", backend="mock", version=v)) for v in "123"]
    k1, k2, k3 = (cache_key(1, i, body) for i in ids)
    assert len({k1, k2, k3}) == 3
    assert cache_key(1, ids[0], {**body, "stream": True, "user": "u"}) == k1
    assert cache_key(1, ids[0], {**body, "temperature": 0.5}) != k1
    assert cache_key(2, ids[0], body) != k1  # another project
    for key in (k1, k2, k3):
        cache.put(key, {"v": key.hex()}, ttl=10)
    assert cache.get(k1) is None  # evicted, least recently used
    assert cache.get(k3) == {"v": k3.hex()}
    clock.now += 11
    assert cache.get(k3) is None
    assert len(cache) == 1


def test_a_deployments_identity_covers_what_shapes_its_answers() -> None:
    base = DeploymentSpec(name="a", backend="openai_compatible", base_url="https://x.example/v1", model="u")
    variants = [
        base.model_copy(update={"base_url": "https://y.example/v1"}),
        base.model_copy(update={"model": "v"}),
        base.model_copy(update={"version": "2"}),
        base.model_copy(update={"api_key_env": "K"}),
        base.model_copy(update={"backend": "mock", "base_url": None}),
    ]
    ids = {deployment_identity("m", d) for d in [base, *variants]}
    assert len(ids) == 1 + len(variants)
    assert deployment_identity("m", base.model_copy(update={"weight": 5})) == deployment_identity("m", base)
    assert deployment_identity("other", base) != deployment_identity("m", base)


def test_the_cache_caps_every_ttl() -> None:
    clock = Clock()
    cache = ResponseCache(max_entries=10, max_bytes=10_000, clock=clock, max_ttl=5)
    cache.put(b"k", {"v": 1}, ttl=3600)
    clock.now += 6
    assert cache.get(b"k") is None


def test_cache_respects_its_byte_budget() -> None:
    cache = ResponseCache(max_entries=100, max_bytes=100)
    for i in range(10):
        cache.put(bytes([i]), {"text": "x" * 30}, ttl=60)
    assert cache.size_bytes <= 100
    assert len(cache) == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "m"}', "messages"),
        (b'{"model": "", "messages": [{"role": "user"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": 0}', "max_tokens"),
        (b'{"model": "m", "messages": [{"role": "user"}], "n": 3}', "n"),
        (b'{"model": "m", "messages": [{"role": "user"}], "base_url": "http://x"}', "base_url"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"model": "m", "messages": [{"role": {"a": 1}}]}', "messages[0].role"),
    ],
)
def test_invalid_chat_bodies_name_the_parameter(body: bytes, param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_chat(body)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_a_valid_chat_body_is_forwarded_with_the_deployments_model() -> None:
    req = parse_chat(
        b'{"model": "pub", "messages": [{"role": "user", "content": "hi"}], "stream": true, "top_p": 1}'
    )
    assert (req.stream, req.include_usage, req.temperature) == (True, False, 1.0)
    upstream = req.upstream_body("private-model")
    assert upstream["model"] == "private-model"
    assert upstream["stream_options"] == {"include_usage": True}
    assert "stream_options" not in req.upstream_body("x", stream=False)
    assert parse_embeddings(b'{"model": "e", "input": ["a", "b"]}').model == "e"


def test_route_file_validation() -> None:
    ok = {
        "name": "m",
        "deployments": [
            {"name": "a", "backend": "openai_compatible", "base_url": "https://x/v1", "api_key_env": "K"}
        ],
    }
    config = GatewayConfig.model_validate(
        {
            "routes": [ok],
            "secret_origins": {"J": ["https://J.example"], "K": ["http://y:8000/"]},
            "allowed_upstream_origins": ["http://vllm:8000"],
        }
    )
    assert config.secret_bindings() == {
        "K": {"https://x:443", "http://y:8000"},
        "J": {"https://j.example:443"},
    }
    assert config.upstream_origins() == {
        "https://x:443",
        "http://vllm:8000",
        "http://y:8000",
        "https://j.example:443",
    }
    bad = [
        {"routes": [ok, ok]},
        {"routes": [{**ok, "deployments": [{"name": "a", "backend": "openai_compatible"}]}]},
        {"routes": [{**ok, "deployments": [{"name": "a", "backend": "mock", "base_url": "http://x"}]}]},
        {"routes": [{**ok, "fallbacks": ok["deployments"]}]},
        {"routes": [{**ok, "deployments": [{"name": "a", "backend": "mock", "weight": 0}]}]},
        {"routes": [{**ok, "unknown": 1}]},
        {"routes": [], "secret_origins": {"K": ["ftp://x"]}},
        {"routes": [], "allowed_upstream_origins": ["http://user:pw@x"]},
    ]
    for raw in bad:
        with pytest.raises(ValidationError):
            GatewayConfig.model_validate(raw)


def test_the_old_allow_list_key_says_what_replaced_it() -> None:
    with pytest.raises(ValidationError, match="secret_origins"):
        GatewayConfig.model_validate({"routes": [], "allowed_secret_envs": ["K"]})


def test_the_shipped_example_file_is_valid() -> None:
    path = Path(__file__).resolve().parents[3] / "deploy" / "gateway.example.yaml"
    config = GatewayConfig.model_validate(yaml.safe_load(path.read_text("utf-8")))
    assert {r.name for r in config.routes} == {"smollm2", "chat-default", "mock"}
    assert set(config.secret_bindings()) == {"OPENAI_API_KEY", "VLLM_API_KEY"}
