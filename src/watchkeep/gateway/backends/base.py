"""The contract every backend keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

Json = dict[str, Any]


class InFlight:
    """Counts a backend's calls in progress, so a backend no route uses any more is closed
    only once the calls it is serving are done (``with in_flight:`` around each call)."""

    __slots__ = ("_count", "_idle")

    def __init__(self) -> None:
        self._count = 0
        self._idle: asyncio.Event | None = None

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> None:
        self._count += 1

    def __exit__(self, *exc: object) -> None:
        self._count -= 1
        if self._count == 0 and self._idle is not None:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no call is in progress."""
        while self._count:
            self._idle = asyncio.Event()
            await self._idle.wait()


class Backend(Protocol):
    """Chat, streamed chat and embeddings in OpenAI's shapes; raises ``UpstreamError``."""

    in_flight: InFlight

    async def chat(self, body: Json) -> Json:
        """A ``chat.completion`` object."""
        ...

    def stream(self, body: Json) -> AsyncIterator[list[Json]]:
        """``chat.completion.chunk`` objects in batches, each batch the chunks that arrived
        together (the relay writes a batch to the client at once: one write, not one per
        chunk); never an empty batch. Closing the iterator cancels the upstream call."""
        ...

    async def embeddings(self, body: Json) -> Json:
        """An embeddings ``list`` object."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or models."""
        ...


def usage_of(obj: Json) -> tuple[int | None, int | None]:
    """Prompt and completion tokens of a response or chunk, when it says."""
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) else None,
        completion if isinstance(completion, int) else None,
    )
