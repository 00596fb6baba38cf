"""Per-key limits on requests and tokens per minute: token buckets, local or in Redis.

A request takes one token from the key's request bucket and needs a positive token
bucket; the tokens it used are charged after the response (so one large reply can
take the bucket below zero and hold the key back until it refills). Buckets refill
continuously at limit/60 per second up to the limit. With ``WATCHKEEP_REDIS_URL``
every replica shares the buckets through one atomic Lua script timed by Redis's own
clock; if Redis does not answer, the check fails open (counted, never an outage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from watchkeep.gateway.config import LimitSpec
from watchkeep.gateway.telemetry import GatewayMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which limit refused the request, and when to come back."""

    limit: str
    retry_after: float


class RateLimiter(Protocol):
    """Admits requests and charges tokens per key."""

    async def admit(self, key: str, limits: LimitSpec) -> Refusal | None:
        """None when the request may go ahead (one request taken)."""
        ...

    async def charge(self, key: str, limits: LimitSpec, tokens: int) -> None:
        """Take the tokens a finished request used."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class LocalRateLimiter:
    """Buckets in this process (one replica)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # key -> [requests, tokens, last refill]

    def _refill(self, key: str, limits: LimitSpec) -> list[float]:
        now = self._clock()
        rpm = limits.requests_per_minute or 0
        tpm = limits.tokens_per_minute or 0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [float(rpm), float(tpm), now]
            return bucket
        elapsed = now - bucket[2]
        bucket[0] = min(float(rpm), bucket[0] + elapsed * rpm / 60)
        bucket[1] = min(float(tpm), bucket[1] + elapsed * tpm / 60)
        bucket[2] = now
        return bucket

    async def admit(self, key: str, limits: LimitSpec) -> Refusal | None:
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if rpm is None and tpm is None:
            return None
        bucket = self._refill(key, limits)
        if rpm is not None and bucket[0] < 1:
            return Refusal("requests", (1 - bucket[0]) * 60 / rpm)
        if tpm is not None and bucket[1] <= 0:
            return Refusal("tokens", (1 - bucket[1]) * 60 / tpm)
        if rpm is not None:
            bucket[0] -= 1
        return None

    async def charge(self, key: str, limits: LimitSpec, tokens: int) -> None:
        if limits.tokens_per_minute is not None and tokens > 0:
            self._refill(key, limits)[1] -= tokens

    async def aclose(self) -> None:
        return None


_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local mode, cost = ARGV[3], tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local r, t, ts = tonumber(b[1]) or rpm, tonumber(b[2]) or tpm, tonumber(b[3]) or now
local dt = math.max(0, now - ts)
r = math.min(rpm, r + dt * rpm / 60)
t = math.min(tpm, t + dt * tpm / 60)
local refused, wait = 0, 0
if mode == 'admit' then
  if rpm > 0 and r < 1 then
    refused, wait = 1, (1 - r) * 60 / rpm
  elseif tpm > 0 and t <= 0 then
    refused, wait = 2, (1 - t) * 60 / tpm
  elseif rpm > 0 then
    r = r - 1
  end
elseif tpm > 0 then
  t = t - cost
end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(t), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 180000)
return {refused, tostring(wait)}
"""


class RedisRateLimiter:
    """Buckets shared by every replica through Redis."""

    def __init__(self, url: str, metrics: GatewayMetrics, prefix: str = "watchkeep:rl:") -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script: Any = self._redis.register_script(_SCRIPT)
        self._metrics = metrics
        self._prefix = prefix
        self._warned = 0.0

    async def _call(self, key: str, limits: LimitSpec, mode: str, cost: int) -> list[Any] | None:
        args = [limits.requests_per_minute or 0, limits.tokens_per_minute or 0, mode, cost]
        try:
            result: list[Any] = await self._script(keys=[self._prefix + key], args=args)
        except Exception as exc:
            self._metrics.limiter_errors.inc()
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("rate limiter: Redis unavailable, failing open: %s", exc)
            return None
        return result

    async def admit(self, key: str, limits: LimitSpec) -> Refusal | None:
        if limits.requests_per_minute is None and limits.tokens_per_minute is None:
            return None
        result = await self._call(key, limits, "admit", 0)
        if not result or int(result[0]) == 0:
            return None
        return Refusal("requests" if int(result[0]) == 1 else "tokens", float(result[1]))

    async def charge(self, key: str, limits: LimitSpec, tokens: int) -> None:
        if limits.tokens_per_minute is not None and tokens > 0:
            await self._call(key, limits, "charge", tokens)

    async def aclose(self) -> None:
        await self._redis.aclose()
