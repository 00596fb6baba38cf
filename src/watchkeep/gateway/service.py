"""The gateway use cases: chat (whole or streamed) and embeddings along a route.

One ``Gateway`` per app holds the route table, the dispatcher, the cache, the rate
limiter and the trace sink. The HTTP layer authenticates, parses and calls it; every
call leaves a ``CallRecord`` that becomes the trace, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from watchkeep.config import Settings
from watchkeep.gateway.admission import ApiRoutePolicy
from watchkeep.gateway.backends.base import Json, usage_of
from watchkeep.gateway.cache import ResponseCache, cache_key
from watchkeep.gateway.config import GatewayConfig, LimitSpec, load_config
from watchkeep.gateway.dispatch import Dispatcher, count_attempts
from watchkeep.gateway.errors import GatewayError, UpstreamError, invalid
from watchkeep.gateway.protocol import ChatRequest, EmbeddingsRequest, parse_chat
from watchkeep.gateway.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from watchkeep.gateway.refs import PROMPT_VARIABLES, RefResolver
from watchkeep.gateway.resilience import BreakerState
from watchkeep.gateway.route_sync import RouteRefused, RouteSync
from watchkeep.gateway.routing import Deployment, Route, RouteTable
from watchkeep.gateway.telemetry import GatewayMetrics
from watchkeep.gateway.trace_spool import TraceSpool
from watchkeep.gateway.tracing import CallRecord, TraceSink, new_ids
from watchkeep.ingest.group_commit import GroupCommitWriter
from watchkeep.ingest.normalise import SpanNormaliser
from watchkeep.ingest.pricing import PriceTable
from watchkeep.security.egress import AddressPolicy
from watchkeep.security.pii import PiiService
from watchkeep.store.route_repository import RouteRepository

log = logging.getLogger(__name__)
_DONE = b"data: [DONE]\n\n"


def sse(obj: Json) -> bytes:
    """One server-sent event."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class Gateway:
    """Routes, policies and tracing for OpenAI-compatible calls."""

    def __init__(
        self,
        settings: Settings,
        writer: GroupCommitWriter,
        registry: CollectorRegistry,
        routes_store: RouteRepository,
        *,
        config: GatewayConfig | None = None,
        dispatcher: Dispatcher | None = None,
        resolver: RefResolver | None = None,
        pii: PiiService | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or load_config(
            settings.gateway_config, default_model=settings.gateway_default_model
        )
        self.metrics = GatewayMetrics(registry)
        egress = AddressPolicy.from_strings(settings.egress_allow_networks)
        self.route_policy = ApiRoutePolicy.build(self.config, settings, egress)
        self.table = RouteTable(self.config, egress, on_breaker=self._breaker_changed)
        self.routes = RouteSync(
            self.table, self.route_policy, routes_store, quota=settings.quota_routes, resolver=resolver
        )
        self.dispatcher = dispatcher or Dispatcher()
        self.cache = ResponseCache(
            settings.gateway_cache_max_entries,
            settings.gateway_cache_max_bytes,
            max_ttl=settings.gateway_cache_max_ttl_s,
        )
        for route in self.config.routes:
            if route.cache.ttl_s > settings.gateway_cache_max_ttl_s:
                log.warning(
                    "route %r: cache.ttl_s %g is cut to WATCHKEEP_GATEWAY_CACHE_MAX_TTL_S (%g)",
                    route.name,
                    route.cache.ttl_s,
                    settings.gateway_cache_max_ttl_s,
                )
        self.limits = LimitSpec(
            requests_per_minute=self.config.limits.requests_per_minute
            or settings.gateway_requests_per_minute,
            tokens_per_minute=self.config.limits.tokens_per_minute or settings.gateway_tokens_per_minute,
        )
        self.limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url, self.metrics) if settings.redis_url else LocalRateLimiter()
        )
        self.traces = TraceSink(
            writer,
            SpanNormaliser(PriceTable.load(settings.prices_file)),
            self.metrics,
            capture_content=settings.gateway_capture_content,
            spool=TraceSpool.for_settings(settings),
            redact=None if pii is None else pii.redact_payloads,
        )
        self._background: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        """Start the trace thread, load the stored project routes and follow their edits."""
        self.traces.start()
        await self.routes.refresh(force=True)
        self.routes.start(self.settings.gateway_route_sync_seconds)

    async def aclose(self) -> None:
        """Stop shadows, close backends and the limiter, store the last traces."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.routes.aclose()
        await self.table.aclose()
        await self.limiter.aclose()
        self.traces.stop()

    def _breaker_changed(self, label: str, state: BreakerState) -> None:
        self.metrics.child(self.metrics.breaker_open, label).set(0 if state is BreakerState.CLOSED else 1)
        log.warning("circuit breaker %s is now %s", label, state.value)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the steps every call takes -------------------------------------------------

    def begin(self, project_id: int, operation: str, model: str, traceparent: str | None) -> CallRecord:
        """A new call's record, joined to the caller's trace when it sent ``traceparent``."""
        trace_id, span_id, parent = new_ids(traceparent)
        return CallRecord(project_id, operation, model, trace_id, span_id, parent)

    async def route(self, record: CallRecord) -> Route:
        """The route for the record's model, else the model version it names (``bot@3``,
        ``bot@production``) as a single-deployment route; 404 when there is neither."""
        route = self.table.resolve(record.project_id, record.model)
        if route is None:
            try:
                route = await self.routes.by_reference(record.project_id, record.model)
            except RouteRefused as exc:
                raise GatewayError(403, exc.message, param="model", code="model_not_allowed") from None
        if route is None:
            raise GatewayError(
                404, f"the model '{record.model}' does not exist", param="model", code="model_not_found"
            )
        return route

    async def admit(self, key: str) -> None:
        """Apply the per-key limits; 429 with Retry-After when over."""
        refusal = await self.limiter.admit(key, self.limits)
        if refusal is not None:
            self.metrics.child(self.metrics.rate_limited, refusal.limit).inc()
            wait = max(1, int(refusal.retry_after + 0.999))
            raise GatewayError(
                429,
                f"rate limit of {refusal.limit} per minute reached for this key; retry in {wait} s",
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(wait)},
            )

    def finish(self, record: CallRecord, key: str) -> None:
        """Count the call, charge its tokens and queue its trace (the call ends here).

        Every counter of the call is updated here, once its answer (or a stream's end) is
        out: its tries, the cache's answer and the time to first token, too.
        """
        record.ended = time.perf_counter()
        log = record.log
        count_attempts(self.metrics, log)
        if log.cache:
            self.metrics.child(self.metrics.cache, log.cache).inc()
        if record.ttft_ms is not None and not record.cache_hit:
            self.metrics.child(self.metrics.ttft, record.model).observe(record.ttft_ms / 1000)
        route = record.model if record.status != 404 else "unknown"
        self.metrics.child(self.metrics.requests, record.operation, route, str(record.status)).inc()
        self.metrics.child(self.metrics.latency, route).observe(record.elapsed_s())
        tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
        if record.input_tokens:
            self.metrics.child(self.metrics.tokens, route, "input").inc(record.input_tokens)
        if record.output_tokens:
            self.metrics.child(self.metrics.tokens, route, "output").inc(record.output_tokens)
        if tokens and self.limits.tokens_per_minute is not None:
            self._spawn(self.limiter.charge(key, self.limits, tokens))
        self.traces.record(record)

    def _cache_key(
        self,
        record: CallRecord,
        route: Route,
        first: Deployment,
        body: Json,
        asked: bool | None,
        deterministic: bool,
    ) -> bytes | None:
        """The cache key, or None (bypass): off when asked, or for sampled requests unless asked."""
        cache = route.spec.cache
        wanted = asked if asked is not None else deterministic or cache.nondeterministic
        if not cache.enabled or not wanted:
            record.log.cache = "bypass"
            return None
        identity = first.identity
        if route.prompt is not None:  # an answer to prompt v1 never serves v2
            identity += f"\0{route.prompt.name}@{route.prompt.version}".encode()
        return cache_key(record.project_id, identity, body)

    def _cached(self, key: bytes | None, record: CallRecord, first: Deployment) -> Json | None:
        if key is None:
            return None
        hit = self.cache.get(key)
        record.log.cache = "hit" if hit is not None else "miss"
        if hit is not None:
            record.cache_hit = True
            record.log.served_by = first
        return hit

    # --- chat -----------------------------------------------------------------------

    async def _prepare(self, req: ChatRequest, record: CallRecord) -> tuple[Route, Deployment, ChatRequest]:
        record.stream = req.stream
        record.params = req.body
        record.input_messages = req.messages
        route = await self.route(record)
        req = _with_prompt(route, req, record)
        first = route.pick(self.dispatcher.rng)
        record.log.decision = (
            f"weighted:{first.name}" if len(route.primaries) > 1 else f"primary:{first.name}"
        )
        return route, first, req

    async def chat(self, req: ChatRequest, record: CallRecord, cache: bool | None = None) -> Json:
        """A whole ``chat.completion`` (served from the cache when it can be)."""
        route, first, req = await self._prepare(req, record)
        key = self._cache_key(record, route, first, req.body, cache, req.temperature == 0.0)
        result = self._cached(key, record, first)
        if result is None:
            result = await self.dispatcher.run(
                route,
                first,
                lambda d: d.backend.chat(req.upstream_body(d.upstream_model, stream=False)),
                record.log,
            )
            if key is not None and _cacheable(result):
                self.cache.put(key, result, route.spec.cache.ttl_s)
            self._mirror(route, req, record)
        _read_completion(result, record)
        return {**result, "model": req.model}

    async def open_stream(
        self, req: ChatRequest, record: CallRecord, cache: bool | None = None
    ) -> AsyncIterator[bytes]:
        """Server-sent events; failures before the first chunk fall back, later ones end the stream."""
        route, first, req = await self._prepare(req, record)
        key = self._cache_key(record, route, first, req.body, cache, req.temperature == 0.0)
        hit = self._cached(key, record, first)
        if hit is not None:
            _read_completion(hit, record)
            record.ttft_ms = record.elapsed_s() * 1000
            return _replay(hit, req)

        async def start(d: Deployment) -> tuple[list[Json], AsyncIterator[list[Json]]]:
            chunks = d.backend.stream(req.upstream_body(d.upstream_model))
            try:
                return await anext(chunks), chunks
            except StopAsyncIteration:
                raise UpstreamError("the upstream stream was empty") from None
            except BaseException:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise

        batch, batches = await self.dispatcher.run(route, first, start, record.log)
        self._mirror(route, req, record)
        assert record.log.served_by is not None
        return self._relay(req, record, batch, batches, record.log.served_by.spec.timeout_s)

    async def _relay(
        self,
        req: ChatRequest,
        record: CallRecord,
        batch: list[Json],
        batches: AsyncIterator[list[Json]],
        idle: float,
    ) -> AsyncIterator[bytes]:
        """The client's events: a batch of chunks that arrived together goes out as one write
        (a socket write costs more than the chunk's parsing here), except the first text,
        which goes out at once (time to first token)."""
        parts: list[str] = []
        out: list[bytes] = []
        try:
            while True:
                for chunk in batch:
                    first = _absorb(chunk, record, parts) and record.ttft_ms is None
                    shown = _for_client(chunk, req)
                    if shown is not None:
                        out.append(sse(shown))
                    if first:  # counted by ``finish``, after the stream
                        record.ttft_ms = record.elapsed_s() * 1000
                        if out:
                            yield b"".join(out)
                            out.clear()
                if out:
                    yield b"".join(out)
                    out.clear()
                try:
                    async with self.dispatcher.deadlines.within(idle):
                        batch = await anext(batches)
                except StopAsyncIteration:
                    break
            yield _DONE
        except (UpstreamError, TimeoutError) as exc:
            if isinstance(exc, UpstreamError) and not exc.timeout:
                message = exc.message
            else:
                message = f"the stream stalled for {idle:g} s"
            record.status, record.error = 502, "upstream_stream_error"
            yield sse(
                {
                    "error": {
                        "message": message,
                        "type": "upstream_error",
                        "param": None,
                        "code": "stream_error",
                    }
                }
            )
        except BaseException:
            record.status, record.error = 499, "client_disconnected"
            raise
        finally:
            record.output_text = "".join(parts)
            await batches.aclose()  # type: ignore[attr-defined]

    # --- embeddings -----------------------------------------------------------------

    async def embeddings(self, req: EmbeddingsRequest, record: CallRecord) -> Json:
        """An embeddings list (cached: embeddings are deterministic)."""
        route = await self.route(record)
        first = route.pick(self.dispatcher.rng)
        record.log.decision = f"primary:{first.name}"
        key = self._cache_key(record, route, first, req.body, None, True)
        result = self._cached(key, record, first)
        if result is None:
            result = await self.dispatcher.run(
                route, first, lambda d: d.backend.embeddings(req.upstream_body(d.upstream_model)), record.log
            )
            if key is not None:
                self.cache.put(key, result, route.spec.cache.ttl_s)
        record.input_tokens, _ = usage_of(result)
        record.response_model = result.get("model") if isinstance(result.get("model"), str) else None
        return {**result, "model": req.model}

    # --- shadow ---------------------------------------------------------------------

    def _mirror(self, route: Route, req: ChatRequest, primary: CallRecord) -> None:
        shadow = route.shadow
        if shadow is None:
            return
        if len(self._background) >= self.settings.gateway_shadow_concurrency:
            self.metrics.child(self.metrics.shadow, route.name, "dropped").inc()
            return
        record = CallRecord(
            primary.project_id,
            "chat",
            route.name,
            primary.trace_id,
            uuid.uuid4().hex[:16],
            primary.span_id,
            params=req.body,
            input_messages=req.messages,
            shadow_of=primary.log.served_by.name if primary.log.served_by else None,
            prompt=primary.prompt,
        )
        record.log.served_by = shadow
        self._spawn(self._shadow_call(route, shadow, req, record))

    async def _shadow_call(
        self, route: Route, shadow: Deployment, req: ChatRequest, record: CallRecord
    ) -> None:
        try:
            async with asyncio.timeout(shadow.spec.timeout_s):
                result = await shadow.backend.chat(req.upstream_body(shadow.upstream_model, stream=False))
            _read_completion(result, record)
            outcome = "ok"
        except (UpstreamError, TimeoutError) as exc:
            record.status, record.error = 502, type(exc).__name__
            outcome = "error"
        record.log.attempts.clear()
        self.metrics.child(self.metrics.shadow, route.name, outcome).inc()
        self.metrics.child(self.metrics.attempts, route.name, shadow.name, outcome).inc()
        self.traces.record(record)


def _with_prompt(route: Route, req: ChatRequest, record: CallRecord) -> ChatRequest:
    """The request with the route's prompt rendered in (``binding.apply``); 400 on bad variables."""
    binding = route.prompt
    if binding is None:
        if PROMPT_VARIABLES in req.body:
            raise invalid(
                f"'{PROMPT_VARIABLES}' is for routes with a prompt; {route.name!r} has none", PROMPT_VARIABLES
            )
        return req
    record.prompt = (binding.name, binding.version)
    try:
        body = binding.apply(req.body)
    except ValueError as exc:
        raise invalid(f"prompt {binding.name}@{binding.version}: {exc}", PROMPT_VARIABLES) from None
    prompted = parse_chat(orjson.dumps(body))
    record.params = prompted.body
    record.input_messages = prompted.messages
    return prompted


def _cacheable(result: Json) -> bool:
    choices = result.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    return all(isinstance(c, dict) and c.get("finish_reason") in ("stop", "length") for c in choices)


def _read_completion(result: Json, record: CallRecord) -> None:
    record.input_tokens, record.output_tokens = usage_of(result)
    model = result.get("model")
    record.response_model = model if isinstance(model, str) else None
    choices = result.get("choices") or []
    if choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        content = message.get("content")
        record.output_text = content if isinstance(content, str) else None
        record.finish_reason = choices[0].get("finish_reason")


def _absorb(chunk: Json, record: CallRecord, parts: list[str]) -> bool:
    """Note the chunk's text, finish reason and usage; True when it carried text."""
    prompt, completion = usage_of(chunk)
    if prompt is not None:
        record.input_tokens, record.output_tokens = prompt, completion
    model = chunk.get("model")
    if isinstance(model, str):
        record.response_model = model
    texted = False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            parts.append(content)
            texted = True
        elif delta.get("tool_calls"):
            texted = True
        if choice.get("finish_reason"):
            record.finish_reason = choice["finish_reason"]
    return texted


def _for_client(chunk: Json, req: ChatRequest) -> Json | None:
    """The chunk as the caller should see it: the public model name, usage only when asked."""
    if not req.include_usage:
        if not chunk.get("choices"):
            return None
        if "usage" in chunk:
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
    return {**chunk, "model": req.model}


async def _replay(hit: Json, req: ChatRequest) -> AsyncIterator[bytes]:
    """A cached completion as a stream: one content chunk, the finish, usage when asked."""
    base = {
        "id": hit.get("id"),
        "object": "chat.completion.chunk",
        "created": hit.get("created"),
        "model": req.model,
    }
    choice = (hit.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    delta = {"role": "assistant", "content": message.get("content") or ""}
    yield sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}]})
    if req.include_usage:
        yield sse({**base, "choices": [], "usage": hit.get("usage")})
    yield _DONE
