"""The REST body cap: one pure-ASGI layer in front of every REST route.

A declared ``Content-Length`` over the cap is answered 413 before the app runs. A body
without one (chunked) is counted as the app pulls it from ``receive``: past the cap,
``receive`` raises, whatever answer the app then produces is dropped and a 413 goes out
instead. Nothing is buffered here; the app reads the body once, as it always did. The
counting is ``security.body_cap.BodyCap``, the reader the OTLP and gateway edges use too.

Paths under ``/v1/`` are not capped here: the OTLP receiver and the gateway's OpenAI
endpoints have their own caps (``max_body_bytes``, ``gateway_max_request_bytes``). A few
routes that take files (dataset uploads) have a larger cap of their own, named by a
path pattern and its setting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeep.security.body_cap import BodyCap, content_length

OWN_CAPS = ("/v1/",)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passed the cap (FastAPI lets it through)."""


@dataclass(frozen=True, slots=True)
class LargerCap:
    """A larger cap for the paths ``pattern`` matches (a full match), named by its setting."""

    pattern: str
    cap: int
    setting: str


class _Limit:
    """One cap: its counter and its 413 body."""

    def __init__(self, cap: int, setting: str) -> None:
        self.counter = BodyCap(cap, lambda _: BodyTooLarge(413, "request body too large"))
        self.body = orjson.dumps(
            {
                "error": {
                    "code": "request_too_large",
                    "message": f"the request body is larger than {cap} bytes (setting {setting})",
                }
            }
        )


class RestBodyLimit:
    """413 for REST request bodies over ``cap`` bytes (declared or streamed)."""

    def __init__(
        self,
        app: ASGIApp,
        cap: int,
        exempt: tuple[str, ...] = OWN_CAPS,
        larger: Sequence[LargerCap] = (),
    ) -> None:
        self.app = app
        self.cap = cap
        self.exempt = exempt
        self._default = _Limit(cap, "rest_max_body_bytes")
        self._larger = [(re.compile(c.pattern), _Limit(c.cap, c.setting)) for c in larger]

    def _limit(self, path: str) -> _Limit:
        for pattern, limit in self._larger:
            if pattern.fullmatch(path):
                return limit
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        try:
            limit.counter.check_declared(content_length(scope["headers"]))
        except BodyTooLarge:
            await self._refuse(send, limit)
            return
        counted = limit.counter.counting(receive)
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal over
            try:
                return await counted()
            except BodyTooLarge:
                over = True
                raise

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to the exception; ours goes out below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: _Limit) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(limit.body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": limit.body})
