"""Request body caps: one reader for every HTTP edge (REST routes, OTLP ingest, the gateway).

A declared ``Content-Length`` over the cap is refused before a byte is read; a body
without one (chunked) is counted as it arrives from ASGI ``receive`` and refused once it
passes the cap. The cap is each edge's setting; the error builder gives each edge its
own 413 answer (REST error shape, google.rpc.Status, OpenAI error object).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

TooLarge = Callable[[int], Exception]


class BodyCap:
    """``cap`` bytes at most; past it, ``too_large(cap)`` is raised."""

    def __init__(self, cap: int, too_large: TooLarge) -> None:
        self.cap = cap
        self.too_large = too_large

    def check_declared(self, content_length: bytes | None) -> None:
        """Refuse a declared length over the cap (a malformed one is left to the server)."""
        if content_length is not None and content_length.isdigit() and int(content_length) > self.cap:
            raise self.too_large(self.cap)

    def counting(self, receive: Receive) -> Receive:
        """``receive``, raising once the request's body chunks add up past the cap."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.cap:
                    raise self.too_large(self.cap)
            return message

        return counted

    async def read(self, receive: Receive, content_length: bytes | None) -> bytes:
        """The whole body, read straight from ``receive``; ``ClientDisconnect`` if the client goes."""
        self.check_declared(content_length)
        counted = self.counting(receive)
        parts: list[bytes] = []  # joined once: concatenating per chunk copies the body again each time
        while True:
            message = await counted()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body: bytes = message.get("body", b"")
            if not message.get("more_body", False):
                if not parts:
                    return body
                parts.append(body)
                return b"".join(parts)
            parts.append(body)


def content_length(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The first ``Content-Length`` of an ASGI header list, if any."""
    for name, value in headers:
        if name == b"content-length":
            return value
    return None
