"""Instrumentation of ``xllamacpp.Server.handle_chat_completions`` (plain and streamed).

``xllamacpp`` is the llama.cpp binding watchkeep's gateway serves local GGUF models with.
Its chat call takes an OpenAI-shaped request dict and returns the answer dict, or, given
a callback, calls it once per chunk: the callback is wrapped so the first chunk stamps
the time to first token and the chunks become the span's output. An error comes back as
a dict (``{"error": {...}}`` or ``{"code": ..., "message": ...}``), never raised: the
span records it as an error. Only the class can be patched (a compiled ``Server`` has no
instance ``__dict__``), so ``instrument(server_object)`` is refused with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watchkeep.sdk.client import current_client
from watchkeep.sdk.instrument._chat import StreamState, fail, finish, start_chat
from watchkeep.sdk.instrument.patching import patch, unpatch

PROVIDER = "llama_cpp"
METHOD = "handle_chat_completions"


class ChatError(Exception):
    """The error llama.cpp returned instead of an answer."""


def _error(result: Any) -> ChatError | None:
    if not isinstance(result, dict):
        return None
    err = result.get("error") if "error" in result else (result if "code" in result else None)
    return ChatError(str(err.get("message") or err)) if isinstance(err, dict) else None


def _traced(original: Callable[..., Any], server: Any, request: Any, callback: Any) -> Any:
    client = current_client()
    body = request if isinstance(request, dict) else {}
    record = start_chat(client, PROVIDER, body.get("model"), body.get("messages"), body)
    if record is None:
        return original(server, request, callback) if callback is not None else original(server, request)
    if callback is None:
        try:
            result = original(server, request)
        except BaseException as exc:
            fail(client, record, exc)
            raise
        err = _error(result)
        if err is not None:
            fail(client, record, err)
        else:
            finish(client, record, result)
        return result
    state = StreamState(client, record)

    def on_chunk(chunk: Any) -> Any:
        err = _error(chunk)
        if err is not None:
            state.end(err)
        else:
            state.add(chunk)
        return callback(chunk)

    try:
        result = original(server, request, on_chunk)
    except BaseException as exc:
        state.end(exc)
        raise
    state.end(_error(result))
    return result


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_chat_completions(server: Any, *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("prompt", args[0] if args else None)
        callback = kwargs.get("callback", args[1] if len(args) > 1 else None)
        return _traced(original, server, request, callback)

    return handle_chat_completions


def _server_class() -> type[Any]:
    from xllamacpp import Server  # type: ignore[import-not-found,unused-ignore]

    return Server  # type: ignore[no-any-return]


def instrument_module() -> bool:
    return patch(_server_class(), METHOD, _wrapper)


def uninstrument_module() -> bool:
    return unpatch(_server_class(), METHOD)


def is_client(obj: object) -> bool:
    return type(obj).__module__.startswith("xllamacpp") and hasattr(obj, METHOD)


def instrument_client(server: Any) -> bool:
    # A compiled Server has no instance __dict__ to hold a wrapper.
    raise TypeError("xllamacpp.Server objects cannot be instrumented one by one: use instrument('xllamacpp')")


def uninstrument_client(server: Any) -> bool:
    return False
