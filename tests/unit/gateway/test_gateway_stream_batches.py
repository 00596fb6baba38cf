"""Streams leave in batches (decision 0027): SSE lines into chunk batches, and the ASGI
responder that writes them and stops the stream when the client goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from watchkeep.gateway.backends.openai_compatible import _events
from watchkeep.gateway.errors import UpstreamError
from watchkeep.gateway.web import EventStream


def test_lines_become_one_batch_and_done_ends_it() -> None:
    lines = [b'data: {"choices": [], "n": 1}\r', b"", b": comment", b'data: {"choices": [], "n": 2}']
    batch, done, failure, rest = _events(lines)
    assert [c["n"] for c in batch] == [1, 2]
    assert not done
    assert failure is None
    assert rest == []
    batch, done, failure, rest = _events(
        [b'data: {"choices": [], "n": 3}', b"data: [DONE]", b'data: {"n": 4}']
    )
    assert [c["n"] for c in batch] == [3]
    assert done
    assert failure is None
    assert rest == []


def _delta(n: int, delta: str) -> bytes:
    return b'data: {"n": %d, "choices": [{"index": 0, "delta": %s}]}' % (n, delta.encode())


def test_until_text_ends_the_batch_at_the_first_text_and_leaves_the_rest_unread() -> None:
    role, text, tool = _delta(1, '{"role": "assistant"}'), _delta(2, '{"content": "Hi"}'), _delta(3, "{}")
    lines = [role, b"", text, b"", tool, b"data: [DONE]"]
    batch, done, failure, rest = _events(lines, until_text=True)
    assert [c["n"] for c in batch] == [1, 2]
    assert (done, failure) == (False, None)
    assert rest == [b"", tool, b"data: [DONE]"]
    assert [c["n"] for c in _events(rest, until_text=False)[0]] == [3]
    calls = _delta(4, '{"tool_calls": [{"index": 0, "id": "c1"}]}')
    assert [c["n"] for c in _events([role, calls, text], until_text=True)[0]] == [1, 4]
    # No text in the read: all of it is one batch, as without until_text.
    assert _events([role, tool], until_text=True)[3] == []


@pytest.mark.parametrize("line", [b'data: {"error": {"type": "overloaded"}}', b"data: {not json"])
def test_an_error_or_malformed_event_fails_the_stream_after_the_chunks_before_it(line: bytes) -> None:
    batch, done, failure, _ = _events(
        [b'data: {"choices": [], "n": 1}', line, b'data: {"choices": [], "n": 2}']
    )
    assert [c["n"] for c in batch] == [1]  # what came before the failure still reaches the client
    assert not done
    assert isinstance(failure, UpstreamError)


def _run(stream: EventStream, receive: Any) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        await stream({"type": "http"}, receive, send)

    asyncio.run(main())
    return sent


def test_each_event_is_one_body_message_then_the_end() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"data: a\n\ndata: b\n\n"
        yield b"data: [DONE]\n\n"

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the client stays
        raise AssertionError

    sent = _run(EventStream(events(), [(b"x-watchkeep-trace-id", b"t")]), receive)
    assert sent[0]["type"] == "http.response.start"
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert (b"x-watchkeep-trace-id", b"t") in sent[0]["headers"]
    assert [m["body"] for m in sent[1:]] == [b"data: a\n\ndata: b\n\n", b"data: [DONE]\n\n", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]


def test_a_disconnect_stops_a_waiting_stream_and_closes_it() -> None:
    closed = []

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"data: a\n\n"
            await asyncio.sleep(3600)  # the upstream stalls
            yield b"never"
        finally:
            closed.append(True)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    sent = _run(EventStream(events(), []), receive)  # returns: the cancellation is absorbed
    assert closed == [True]
    assert [m.get("body") for m in sent[1:]] == [b"data: a\n\n"]
