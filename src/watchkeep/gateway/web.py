"""The OpenAI-compatible HTTP surface: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Handlers take the raw request (no per-request pydantic models: this is the hot path),
authenticate the project key, cap the body, parse it cheaply and call the ``Gateway``.
Errors use OpenAI's error object so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeep.gateway import openai_schema
from watchkeep.gateway.errors import GatewayError
from watchkeep.gateway.protocol import parse_chat, parse_embeddings
from watchkeep.gateway.service import Gateway
from watchkeep.gateway.tracing import CallRecord
from watchkeep.security.authz import Permission
from watchkeep.security.bearer import KeyRefused, principal_for
from watchkeep.security.body_cap import BodyCap
from watchkeep.security.keys import KeyVerifier, Principal

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["gateway"])
_JSON_TYPE = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
HeaderMap = dict[bytes, bytes]
RawHeaders = list[tuple[bytes, bytes]]


def header_map(request: Request) -> HeaderMap:
    """The request's headers by lower-case name, built once (Starlette's ``Headers.get``
    scans and decodes the whole list on every call, and a call reads four of them)."""
    return dict(request.scope["headers"])


class JsonResponse(Response):
    """A JSON body with ready-made ASGI headers: Starlette's ``Response`` re-derives its
    headers from a mapping on every call, which the hot path does not need.

    ``after`` runs once the body is handed to the server (or the send failed): the call's
    metrics and trace are counted after its caller has the answer, not before.
    """

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
        after: Callable[[], None] | None = None,
    ):
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [_JSON_TYPE, (b"content-length", str(len(body)).encode()), *(headers or ())]
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            await send({"type": "http.response.body", "body": self.body})
        finally:
            if self._after is not None:
                self._after()


class EventStream(Response):
    """Server-sent events written straight to ASGI ``send``, each as it is produced.

    Starlette's ``StreamingResponse`` runs every stream in an anyio task group with a second
    task listening for the disconnect, which cost the first chunk about a third of a
    millisecond here. This runs the stream in the request's own task with one small watcher
    task: when the client goes, the watcher cancels the stream where it waits (upstream
    chunk or socket), the relay records 499 and closes the upstream connection, and the
    cancellation is absorbed, as Starlette's task group did.
    """

    def __init__(self, events: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background = None
        self.events = events
        self.raw_headers = [*_SSE_HEADERS, *headers]
        self._gone = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None

        async def watch() -> None:
            # The body is read: the next message is the disconnect (or the response's end,
            # after which this watcher is cancelled before it runs).
            while (await receive())["type"] != "http.disconnect":
                pass
            self._gone = True
            task.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for event in self.events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if not self._gone:
                raise
            task.uncancel()
        finally:
            watcher.cancel()


class GatewayAuth:
    """Bearer-key checks for the hot path through ``security.bearer`` (the REST routes'
    check too), answered OpenAI-style. No cache of its own, so a key's answer lives no
    longer than ``WATCHKEEP_KEY_CACHE_SECONDS`` and an eviction in the verifier reaches it."""

    def __init__(self, keys: KeyVerifier) -> None:
        self._keys = keys

    async def principal(self, request: Request, headers: HeaderMap | None = None) -> Principal:
        """The caller, allowed to invoke models; 401 or 403 otherwise."""
        raw = (headers if headers is not None else header_map(request)).get(b"authorization", b"")
        try:
            principal = await principal_for(self._keys, raw.decode("latin-1"))
        except KeyRefused as exc:
            raise GatewayError(401, exc.message, code="invalid_api_key") from None
        if not principal.can(Permission.MODELS_INVOKE):
            raise GatewayError(
                403,
                "this key's role lacks the 'models:invoke' permission",
                type="permission_error",
                code="forbidden",
            )
        # What ``request.state.principal = ...`` does, without building a ``State`` a call.
        request.scope.setdefault("state", {})["principal"] = principal
        return principal


def _gateway(request: Request) -> tuple[Gateway, GatewayAuth]:
    svc: Any = request.app.state.services
    return svc.gateway, request.app.state.gateway_auth


def _error(
    exc: GatewayError, record: CallRecord | None = None, after: Callable[[], None] | None = None
) -> Response:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    if record is not None:
        headers.append((b"x-watchkeep-trace-id", record.trace_id.encode()))
    return JsonResponse(exc.body(), exc.status, headers, after)


def _too_large(cap: int) -> GatewayError:
    return GatewayError(413, f"the request body is larger than {cap} bytes", code="request_too_large")


async def _body(request: Request, headers: HeaderMap, cap: int) -> bytes:
    """The whole body, read straight from ASGI ``receive``; 413 past ``cap`` bytes."""
    return await BodyCap(cap, _too_large).read(request.receive, headers.get(b"content-length"))


_CACHE_WISHES = {b"on": True, b"force": True, b"off": False, b"bypass": False}


def _cache_wish(headers: HeaderMap) -> bool | None:
    return _CACHE_WISHES.get(headers.get(b"x-watchkeep-cache", b"").lower())


def _traceparent(headers: HeaderMap) -> str | None:
    value = headers.get(b"traceparent")
    return value.decode("latin-1") if value is not None else None


@router.post(
    "/chat/completions", openapi_extra=openai_schema.CHAT, summary="Chat completion (OpenAI-compatible)"
)
async def chat_completions(request: Request) -> Response:
    """A chat completion along the model's route; ``stream: true`` answers server-sent events."""
    gateway, auth = _gateway(request)
    record: CallRecord | None = None
    key = ""
    try:
        headers = header_map(request)
        principal = await auth.principal(request, headers)
        key = str(principal.key_id)
        raw = await _body(request, headers, gateway.settings.gateway_max_request_bytes)
        req = parse_chat(raw)
        record = gateway.begin(principal.project_id, "chat", req.model, _traceparent(headers))
        await gateway.admit(key)
        cache = _cache_wish(headers)
        if req.stream:
            events = await gateway.open_stream(req, record, cache)
            return EventStream(_finishing(gateway, record, key, events), _raw_headers(record))
        result = await gateway.chat(req, record, cache)
    except GatewayError as exc:
        return _failed(gateway, exc, record, key)
    except Exception:
        return _failed_unexpectedly(gateway, record, key)
    return _answer(gateway, result, record, key)


def _answer(gateway: Gateway, result: Any, record: CallRecord, key: str) -> Response:
    """The whole answer; the call is counted and traced once it is sent."""
    return JsonResponse(orjson.dumps(result), 200, _raw_headers(record), lambda: gateway.finish(record, key))


def _failed(gateway: Gateway, exc: GatewayError, record: CallRecord | None, key: str) -> Response:
    """Record the failure on the call's trace (once it has one) and answer OpenAI-style."""
    if record is None:
        return _error(exc)
    record.status, record.error = exc.status, exc.code or exc.type
    return _error(exc, record, lambda: gateway.finish(record, key))


def _failed_unexpectedly(gateway: Gateway, record: CallRecord | None, key: str) -> Response:
    """A bug, not the caller's or the upstream's fault: logged, answered 500, and the call
    still ends (its tries, request and trace are counted)."""
    log.exception("gateway request failed")
    return _failed(gateway, GatewayError(500, "internal error", type="server_error"), record, key)


async def _finishing(
    gateway: Gateway, record: CallRecord, key: str, events: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event
    finally:
        gateway.finish(record, key)


def _raw_headers(record: CallRecord) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-watchkeep-trace-id", record.trace_id.encode()),
        (b"x-watchkeep-cache", b"hit" if record.cache_hit else b"miss"),
    ]


@router.post("/embeddings", openapi_extra=openai_schema.EMBEDDINGS, summary="Embeddings (OpenAI-compatible)")
async def embeddings(request: Request) -> Response:
    """Embedding vectors for the input along the model's route."""
    gateway, auth = _gateway(request)
    record: CallRecord | None = None
    key = ""
    try:
        headers = header_map(request)
        principal = await auth.principal(request, headers)
        key = str(principal.key_id)
        req = parse_embeddings(await _body(request, headers, gateway.settings.gateway_max_request_bytes))
        record = gateway.begin(principal.project_id, "embeddings", req.model, _traceparent(headers))
        await gateway.admit(key)
        result = await gateway.embeddings(req, record)
    except GatewayError as exc:
        return _failed(gateway, exc, record, key)
    except Exception:
        return _failed_unexpectedly(gateway, record, key)
    return _answer(gateway, result, record, key)


@router.get("/models", openapi_extra=openai_schema.MODELS, summary="Models (OpenAI-compatible)")
async def list_models(request: Request) -> Response:
    """The public model names this key can call."""
    gateway, auth = _gateway(request)
    try:
        principal = await auth.principal(request)
    except GatewayError as exc:
        return _error(exc)
    data = [
        {
            "id": r.name,
            "object": "model",
            "created": 0,
            "owned_by": "watchkeep" if r.scope == 0 else "project",
        }
        for r in gateway.table.visible(principal.project_id)
    ]
    return JsonResponse(orjson.dumps({"object": "list", "data": data}))


Handler = Callable[[Request], Awaitable[Response]]


class GatewayFastPath:
    """Serves the OpenAI POST endpoints straight from ASGI, around FastAPI's routing stack.

    They are the hot path, and routing, dependency solving and the exception, exit-stack
    and body-limit layers cost about as much CPU as the gateway's own work for a call.
    The handlers are the same functions the FastAPI routes run (those stay for the OpenAPI
    schema); Starlette responses are ASGI apps, so streaming and client disconnects
    behave as they do behind FastAPI.
    """

    def __init__(
        self, app: ASGIApp, root: FastAPI, secured: tuple[RawHeaders, RawHeaders] | None = None
    ) -> None:
        self.app = app
        self._root = root
        # When set, this layer stands in front of the security-headers layer (CORS off) and
        # adds its headers itself: (over http, over https). Its answers are JSON or event
        # streams that set none of them, so the list is the same for every answer.
        self._secured = secured
        self._routes: dict[tuple[str, str], tuple[Handler, APIRoute]] = {}
        for route in router.routes:
            if isinstance(route, APIRoute) and route.endpoint in (chat_completions, embeddings):
                for method in route.methods or ():
                    self._routes[(method, route.path)] = (route.endpoint, route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._routes.get((scope["method"], scope["path"]))
            if found is not None and getattr(self._root.state, "gateway_auth", None) is not None:
                handler, scope["route"] = found
                scope["app"] = self._root
                try:
                    response = await handler(Request(scope, receive))
                except Exception:
                    log.exception("gateway request failed")
                    response = _error(GatewayError(500, "internal error", type="server_error"))
                if self._secured is not None:
                    response.raw_headers.extend(self._secured[scope.get("scheme") == "https"])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
