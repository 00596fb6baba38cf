"""The contract every backend keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

Json = dict[str, Any]


class Backend(Protocol):
    """Chat, streamed chat and embeddings in OpenAI's shapes; raises ``UpstreamError``."""

    async def chat(self, body: Json) -> Json:
        """A ``chat.completion`` object."""
        ...

    def stream(self, body: Json) -> AsyncIterator[Json]:
        """``chat.completion.chunk`` objects; closing the iterator cancels the upstream call."""
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
