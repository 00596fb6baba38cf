"""The gateway's JSON answers count their call after the answer is sent, and even when the send fails."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from watchkeep.gateway.web import JsonResponse


async def _no_message() -> MutableMapping[str, Any]:
    return {"type": "http.disconnect"}


def test_after_runs_once_the_body_is_sent() -> None:
    seen: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        seen.append(message["type"])

    response = JsonResponse(b"{}", 200, after=lambda: seen.append("after"))
    asyncio.run(response({"type": "http"}, _no_message, send))
    assert seen == ["http.response.start", "http.response.body", "after"]


def test_after_runs_when_the_client_is_gone() -> None:
    seen: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        raise OSError("connection reset")

    response = JsonResponse(b"{}", 200, after=lambda: seen.append("after"))
    with pytest.raises(OSError, match="reset"):
        asyncio.run(response({"type": "http"}, _no_message, send))
    assert seen == ["after"]
