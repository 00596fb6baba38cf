"""Instrumentation of the official ``openai`` client's chat completions (sync and async).

Patching the resource classes covers every client in the process; patching one
client object covers only that client. Streams are wrapped to time the first token
and to read content and usage from the chunks (usage arrives only when the request
asks for it with ``stream_options={"include_usage": True}``; we never change the
request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watchkeep.sdk.instrument._chat import traced_call, traced_call_async
from watchkeep.sdk.instrument.patching import INSTANCE_MARK, instance_marked, patch, unpatch

PROVIDER = "openai"


def _classes() -> tuple[type[Any], type[Any]]:
    from openai.resources.chat.completions import AsyncCompletions, Completions

    return Completions, AsyncCompletions


def _sync_wrapper(original: Callable[..., Any], bound: bool) -> Callable[..., Any]:
    def create(*args: Any, **kwargs: Any) -> Any:
        if not bound and args and instance_marked(args[0]):
            return original(*args, **kwargs)
        return traced_call(
            PROVIDER,
            kwargs.get("model"),
            kwargs.get("messages"),
            lambda: original(*args, **kwargs),
            kwargs,
        )

    return create


def _async_wrapper(original: Callable[..., Any], bound: bool) -> Callable[..., Any]:
    async def create(*args: Any, **kwargs: Any) -> Any:
        if not bound and args and instance_marked(args[0]):
            return await original(*args, **kwargs)
        return await traced_call_async(
            PROVIDER,
            kwargs.get("model"),
            kwargs.get("messages"),
            lambda: original(*args, **kwargs),
            kwargs,
        )

    return create


def instrument_module() -> bool:
    """Trace chat completions of every openai client, present and future."""
    sync_cls, async_cls = _classes()
    a = patch(sync_cls, "create", lambda original: _sync_wrapper(original, bound=False))
    b = patch(async_cls, "create", lambda original: _async_wrapper(original, bound=False))
    return a or b


def uninstrument_module() -> bool:
    sync_cls, async_cls = _classes()
    return unpatch(sync_cls, "create") | unpatch(async_cls, "create")


def is_client(obj: object) -> bool:
    module = type(obj).__module__
    return module.startswith("openai") and hasattr(obj, "chat")


def instrument_client(client: Any) -> bool:
    """Trace chat completions of this one ``OpenAI``/``AsyncOpenAI`` object."""
    completions = client.chat.completions
    _, async_cls = _classes()
    make = _async_wrapper if isinstance(completions, async_cls) else _sync_wrapper
    patched = patch(completions, "create", lambda original: make(original, bound=True))
    if patched:
        completions.__dict__[INSTANCE_MARK] = True
    return patched


def uninstrument_client(client: Any) -> bool:
    completions = client.chat.completions
    completions.__dict__.pop(INSTANCE_MARK, None)
    return unpatch(completions, "create")
