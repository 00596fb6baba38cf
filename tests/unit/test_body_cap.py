"""The one body reader of the HTTP edges: declared and streamed lengths against its cap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from watchkeep.security.body_cap import BodyCap, content_length


class Refused(Exception):
    def __init__(self, cap: int) -> None:
        super().__init__(f"over {cap}")
        self.cap = cap


def receiver(messages: Iterable[Message]) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return receive


def chunks(*parts: bytes) -> list[Message]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


def read(cap: int, messages: list[Message], declared: bytes | None = None) -> bytes:
    return asyncio.run(BodyCap(cap, Refused).read(receiver(messages), declared))


def test_a_body_within_the_cap_is_read_whole() -> None:
    assert read(10, chunks(b"abc", b"", b"defg")) == b"abcdefg"
    assert read(10, chunks(b"0123456789")) == b"0123456789"


def test_a_streamed_body_past_the_cap_gets_the_edges_error() -> None:
    with pytest.raises(Refused) as caught:
        read(5, chunks(b"abc", b"def"))
    assert caught.value.cap == 5


def test_a_declared_length_past_the_cap_is_refused_before_reading() -> None:
    with pytest.raises(Refused):
        read(5, [], declared=b"6")
    assert read(5, chunks(b"ab"), declared=b"not-a-number") == b"ab"


def test_a_client_that_leaves_mid_body_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        read(100, [*chunks(b"a", b"b")[:1], {"type": "http.disconnect"}])


def test_content_length_is_the_first_header_of_that_name() -> None:
    assert content_length([(b"host", b"x"), (b"content-length", b"7"), (b"content-length", b"9")]) == b"7"
    assert content_length([(b"host", b"x")]) is None
