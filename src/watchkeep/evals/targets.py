"""What an evaluation run calls: a gateway route, an OpenAI-compatible endpoint, a Python callable.

Every target turns its failures into the ``TargetError`` kinds the runner acts on (429:
back off; timeout, 5xx, connection: retry; 4xx: give up; a reply of the wrong shape:
garbage), so a run never stops because one call failed. HTTP targets share one aiohttp
session each; an OpenAI-compatible URL goes through the egress policy at every
connection, so a tenant's URL never reaches an internal address.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from pydantic import TypeAdapter, ValidationError

from watchkeep.evals.config import ConfigError, OpenAITarget, PythonTarget, RouteTarget, TargetSpec
from watchkeep.evals.model import (
    Case,
    GarbageReply,
    RateLimited,
    Target,
    TargetError,
    TargetReply,
    TargetTimeout,
)
from watchkeep.gateway.tracing import new_ids
from watchkeep.security.egress import AddressPolicy, EgressConnectRefused, GuardedResolver

MAX_REPLY_BYTES = 8 * 1024 * 1024  # a reply larger than this is garbage, not a reason to run out of memory
_SPEC = TypeAdapter[RouteTarget | OpenAITarget | PythonTarget](TargetSpec)
_NO_OVERRIDE = ("model", "messages", "stream", "seed")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the limiter's halving is the back-off then


def _egress_cause(exc: BaseException) -> EgressConnectRefused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EgressConnectRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def call_ids(traceparent: str | None) -> tuple[str, str]:
    """``(trace_id, span_id)`` of a call: the caller's span when it sent a ``traceparent`` (the
    runner names each case's span so), new ids otherwise; the upstream's span is their child."""
    trace_id, span_id, parent = new_ids(traceparent)
    return trace_id, parent or span_id


def parse_completion(data: Any) -> tuple[str, int | None, int | None, float | None, str | None]:
    """``(text, input tokens, output tokens, cost, model)`` of a chat completion; ``GarbageReply``
    when it is not one."""
    if not isinstance(data, dict):
        raise GarbageReply("the reply is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise GarbageReply("the reply has no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and isinstance(message, dict) and message.get("tool_calls"):
        content = orjson.dumps(message["tool_calls"]).decode()
    if not isinstance(content, str):
        raise GarbageReply("the reply's first choice has no text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    tokens_in, tokens_out, cost = (usage.get(k) for k in ("prompt_tokens", "completion_tokens", "cost"))
    model = data.get("model")
    return (
        content,
        tokens_in if isinstance(tokens_in, int) else None,
        tokens_out if isinstance(tokens_out, int) else None,
        float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        model if isinstance(model, str) else None,
    )


class _HttpChat:
    """One aiohttp session (made on first use, in the running loop) and the error mapping."""

    def __init__(
        self, *, timeout_s: float, concurrency: int, policy: AddressPolicy | None, headers: dict[str, str]
    ) -> None:
        self._timeout = timeout_s
        self._limit = max(1, concurrency)
        self._policy = policy
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = GuardedResolver(self._policy) if self._policy is not None else None
            connector = aiohttp.TCPConnector(limit=self._limit, resolver=resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, raise_for_status=False
            )
        return self._session

    async def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """The JSON answer to ``body``; raises the ``TargetError`` kind of any failure."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self.session().post(
                    url, data=orjson.dumps(body), headers={"Content-Type": "application/json", **headers}
                ) as response:
                    raw = await _read_bounded(response)
                    status, retry = response.status, response.headers.get("Retry-After")
        except TimeoutError:
            raise TargetTimeout(f"no answer within {self._timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            refused = _egress_cause(exc)
            if refused is not None:
                raise TargetError(str(refused), retryable=False) from None
            raise TargetError(
                f"connection failed: {_short(str(exc) or type(exc).__name__)}", retryable=True
            ) from None
        return _answer(status, retry, raw)

    async def get_json(self, url: str, headers: dict[str, str]) -> Any:
        async with asyncio.timeout(self._timeout):
            async with self.session().get(url, headers=headers) as response:
                response.raise_for_status()
                return await response.json(content_type=None)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first ``MAX_REPLY_BYTES + 1`` bytes (then it is refused as too large)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            break
    return b"".join(chunks)


def _answer(status: int, retry_after: str | None, raw: bytes) -> Any:
    if status == 429:
        raise RateLimited("the target answered 429 (rate limited)", _retry_after(retry_after))
    if status >= 400:
        detail = _error_message(raw)
        raise TargetError(
            f"the target answered {status}{': ' + detail if detail else ''}", retryable=status >= 500
        )
    if len(raw) > MAX_REPLY_BYTES:
        raise GarbageReply(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GarbageReply(
            f"the reply is not JSON: {_short(raw.decode('utf-8', 'replace'), 100)!r}"
        ) from None


def _error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return _short(message) if isinstance(message, str) else ""


def _body(model: str, case: Case, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    extra = {k: v for k, v in params.items() if k not in _NO_OVERRIDE}
    return {
        "model": model,
        "messages": [dict(m) for m in case.messages],
        **extra,
        "seed": seed,
        "stream": False,
    }


async def _chat_call(
    http: _HttpChat,
    url: str,
    model: str,
    case: Case,
    params: Mapping[str, Any],
    seed: int,
    traceparent: str | None,
) -> TargetReply:
    trace_id, span_id = call_ids(traceparent)
    headers = {"traceparent": f"00-{trace_id}-{span_id}-01"}
    start_ns, started = time.time_ns(), time.perf_counter()
    data = await http.post(url, _body(model, case, params, seed), headers)
    text, tokens_in, tokens_out, cost, served = parse_completion(data)
    return TargetReply(
        output=text,
        latency_ms=(time.perf_counter() - started) * 1000,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=cost,
        model=served or model,
        trace_id=trace_id,
        span_id=span_id,
        start_ns=start_ns,
    )


class GatewayRouteTarget:
    """A route of a watchkeep gateway; the gateway's span joins the case's trace (``traceparent``)."""

    def __init__(
        self,
        spec: RouteTarget,
        base_url: str,
        *,
        timeout_s: float,
        concurrency: int,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.spec = spec
        self._base = base_url.rstrip("/")
        key = os.environ.get(spec.api_key_env, "")
        self._auth = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = _HttpChat(
            timeout_s=timeout_s, concurrency=concurrency, policy=policy, headers=self._auth
        )
        self._version = spec.version

    @property
    def version(self) -> str:
        return self._version or f"route:{self.spec.route}"

    async def resolve_version(self) -> str:
        """``route:NAME@<sha of its config>`` read once from the gateway; ``route:NAME`` if unreadable."""
        if self._version is None:
            try:
                config = await self._http.get_json(f"{self._base}/api/v1/routes/{self.spec.route}", {})
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                self._version = f"route:{self.spec.route}"
            else:
                if isinstance(config, dict):
                    config.pop("breakers", None)  # live state, not configuration
                digest = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()
                self._version = f"route:{self.spec.route}@{digest[:12]}"
        return self._version

    def describe(self) -> dict[str, Any]:
        return {"kind": "route", "route": self.spec.route, "url": self._base}

    async def call(
        self, case: Case, params: Mapping[str, Any], *, seed: int, traceparent: str | None
    ) -> TargetReply:
        url = f"{self._base}/v1/chat/completions"
        return await _chat_call(self._http, url, self.spec.route, case, params, seed, traceparent)

    async def aclose(self) -> None:
        await self._http.aclose()


class OpenAICompatibleTarget:
    """Any OpenAI-compatible chat completions endpoint, reached only where the egress policy allows."""

    def __init__(
        self, spec: OpenAITarget, *, policy: AddressPolicy, timeout_s: float, concurrency: int
    ) -> None:
        policy.check_url(spec.base_url)  # literal addresses (aiohttp does not resolve them)
        self.spec = spec
        self._base = spec.base_url.rstrip("/")
        headers = dict(spec.headers)
        key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = _HttpChat(timeout_s=timeout_s, concurrency=concurrency, policy=policy, headers=headers)

    @property
    def version(self) -> str:
        return self.spec.version or f"openai:{self.spec.model}@{urlsplit(self.spec.base_url).hostname}"

    def describe(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.spec.model, "base_url": self._base}

    async def call(
        self, case: Case, params: Mapping[str, Any], *, seed: int, traceparent: str | None
    ) -> TargetReply:
        url = f"{self._base}/chat/completions"
        return await _chat_call(self._http, url, self.spec.model, case, params, seed, traceparent)

    async def aclose(self) -> None:
        await self._http.aclose()


def _load_callable(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"target.callable: cannot import {path}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f"target.callable: {path} is not callable")
    return fn  # type: ignore[no-any-return]


class CallableTarget:
    """A Python function ``(messages, params) -> str | dict``, sync (run in a thread) or async."""

    def __init__(self, spec: PythonTarget, *, timeout_s: float) -> None:
        self.spec = spec
        self._fn = _load_callable(spec.callable)
        self._timeout = timeout_s

    @property
    def version(self) -> str:
        return self.spec.version or f"python:{self.spec.callable}"

    def describe(self) -> dict[str, Any]:
        return {"kind": "python", "callable": self.spec.callable}

    async def call(
        self, case: Case, params: Mapping[str, Any], *, seed: int, traceparent: str | None
    ) -> TargetReply:
        trace_id, span_id = call_ids(traceparent)
        messages = [dict(m) for m in case.messages]
        arguments = {**params, "seed": seed}
        start_ns, started = time.time_ns(), time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                if inspect.iscoroutinefunction(self._fn):
                    answer = await self._fn(messages, arguments)
                else:
                    answer = await asyncio.to_thread(self._fn, messages, arguments)
        except TimeoutError:
            raise TargetTimeout(f"no answer within {self._timeout:g} s") from None
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(f"{type(exc).__name__}: {_short(str(exc))}") from exc
        latency = (time.perf_counter() - started) * 1000
        return _callable_reply(answer, latency, trace_id, span_id, start_ns)

    async def aclose(self) -> None:
        return None


def _callable_reply(answer: Any, latency: float, trace_id: str, span_id: str, start_ns: int) -> TargetReply:
    base: dict[str, Any] = {
        "latency_ms": latency,
        "trace_id": trace_id,
        "span_id": span_id,
        "start_ns": start_ns,
    }
    if isinstance(answer, str):
        return TargetReply(output=answer, **base)
    if not isinstance(answer, dict) or not isinstance(answer.get("output"), str):
        raise GarbageReply("the callable must return a string or a dict with a string 'output'")
    try:
        return TargetReply(
            output=answer["output"],
            input_tokens=_opt(answer, "input_tokens", int),
            output_tokens=_opt(answer, "output_tokens", int),
            cost_usd=_opt(answer, "cost_usd", float),
            model=_opt(answer, "model", str),
            **base,
        )
    except (TypeError, ValueError) as exc:
        raise GarbageReply(f"the callable's reply: {exc}") from None


def _opt(answer: dict[str, Any], key: str, kind: type[Any]) -> Any:
    value = answer.get(key)
    return None if value is None else kind(value)


class TargetCompleter:
    """A target as the judge of judge evaluators (``evaluators.base.Completer``)."""

    def __init__(self, target: Target, params: Mapping[str, Any] | None = None) -> None:
        self._target = target
        self._params = dict(params or {"temperature": 0})

    async def complete(self, messages: list[dict[str, str]], *, seed: int | None = None) -> str:
        case = Case(item_key="judge", messages=tuple(messages))
        reply = await self._target.call(case, self._params, seed=seed or 0, traceparent=None)
        if reply.output is None:
            raise GarbageReply("the judge gave no answer")
        return reply.output


def build_target(
    spec: Mapping[str, Any],
    *,
    egress: AddressPolicy,
    gateway_url: str | None = None,
    timeout_s: float = 60.0,
    concurrency: int = 16,
) -> Target:
    """The target a ``TargetSpec`` (as a dict) describes; ``ConfigError`` when it cannot be built,
    ``EgressRefused`` when its URL is an address the policy refuses."""
    try:
        parsed = _SPEC.validate_python(dict(spec))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"target.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    if isinstance(parsed, RouteTarget):
        base = parsed.url or gateway_url
        if not base:
            raise ConfigError("target.url: a route target needs the gateway's URL")
        policy = None
        if parsed.url:  # a URL from the config, not this server's own: the policy applies
            egress.check_url(parsed.url)
            policy = egress
        return GatewayRouteTarget(parsed, base, timeout_s=timeout_s, concurrency=concurrency, policy=policy)
    if isinstance(parsed, OpenAITarget):
        return OpenAICompatibleTarget(parsed, policy=egress, timeout_s=timeout_s, concurrency=concurrency)
    return CallableTarget(parsed, timeout_s=timeout_s)
