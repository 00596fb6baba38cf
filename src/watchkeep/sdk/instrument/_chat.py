"""Chat-completion spans shared by the openai, llama-cpp-python and xllamacpp instrumentations.

Both return the same shapes (objects for openai, dicts for llama.cpp), read through
``field_of``. On the caller's thread only the request parameters, references to the
messages and response, and the first-token time are recorded; the response and the
stream chunks are turned into attributes on the export thread (``SpanRecord.lazy``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from watchkeep import semconv
from watchkeep.sdk.client import Client, current_client
from watchkeep.sdk.payload import dumps, field_of, genai_message
from watchkeep.sdk.spans import SpanRecord

_REQUEST_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
}


def start_chat(
    client: Client, provider: str, model: Any, messages: Any, kwargs: dict[str, Any]
) -> SpanRecord | None:
    """A started CLIENT span for one chat call, or None when tracing is off or fails."""
    if not client.active:
        return None
    try:
        record = client.start_span(f"chat {model}" if model else "chat", SpanKind.CLIENT)
        if not record.sampled:
            return None
        attrs = record.attributes
        attrs[semconv.GEN_AI_OPERATION_NAME] = "chat"
        attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
        attrs[semconv.WK_SPAN_KIND] = "llm"
        if model:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = str(model)
        if kwargs.get("stream"):
            attrs[semconv.GEN_AI_REQUEST_STREAM] = True
        for param, key in _REQUEST_PARAMS.items():
            value = kwargs.get(param)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[key] = value
        if client.config.capture_content and messages is not None:
            record.set_payload(semconv.GEN_AI_INPUT_MESSAGES, messages, messages=True)
        return record
    except Exception as exc:
        client.errors.report("instrumentation", exc)
        return None


def _usage(usage: Any, attrs: dict[str, Any]) -> None:
    if usage is None:
        return
    prompt = field_of(usage, "prompt_tokens")
    completion = field_of(usage, "completion_tokens")
    if isinstance(prompt, int):
        attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = prompt
    if isinstance(completion, int):
        attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = completion


def response_attributes(response: Any, capture: bool, max_chars: int) -> dict[str, Any]:
    """GenAI attributes of a complete (non-streamed) chat completion."""
    attrs: dict[str, Any] = {}
    model = field_of(response, "model")
    if model:
        attrs[semconv.GEN_AI_RESPONSE_MODEL] = str(model)
    response_id = field_of(response, "id")
    if response_id:
        attrs[semconv.GEN_AI_RESPONSE_ID] = str(response_id)
    _usage(field_of(response, "usage"), attrs)
    choices = field_of(response, "choices") or ()
    reasons = [str(field_of(c, "finish_reason")) for c in choices if field_of(c, "finish_reason")]
    if reasons:
        attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if capture:
        messages = []
        for choice in choices:
            message = genai_message(field_of(choice, "message") or {"role": "assistant"})
            if field_of(choice, "finish_reason"):
                message["finish_reason"] = field_of(choice, "finish_reason")
            messages.append(message)
        attrs[semconv.GEN_AI_OUTPUT_MESSAGES] = dumps(messages, max_chars)
    return attrs


def stream_attributes(chunks: Sequence[Any], capture: bool, max_chars: int) -> dict[str, Any]:
    """GenAI attributes assembled from streamed chunks (content, finish, usage)."""
    attrs: dict[str, Any] = {}
    texts: dict[int, list[str]] = {}
    reasons: dict[int, str] = {}
    for chunk in chunks:
        model = field_of(chunk, "model")
        if model:
            attrs[semconv.GEN_AI_RESPONSE_MODEL] = str(model)
        chunk_id = field_of(chunk, "id")
        if chunk_id:
            attrs[semconv.GEN_AI_RESPONSE_ID] = str(chunk_id)
        _usage(field_of(chunk, "usage"), attrs)
        for choice in field_of(chunk, "choices") or ():
            index = field_of(choice, "index") or 0
            content = field_of(field_of(choice, "delta"), "content")
            if content:
                texts.setdefault(index, []).append(str(content))
            reason = field_of(choice, "finish_reason")
            if reason:
                reasons[index] = str(reason)
    if reasons:
        attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = [reasons[i] for i in sorted(reasons)]
    if capture:
        messages = []
        for index in sorted(set(texts) | set(reasons)):
            message: dict[str, Any] = {
                "role": "assistant",
                "parts": [{"type": "text", "content": "".join(texts.get(index, ()))}],
            }
            if index in reasons:
                message["finish_reason"] = reasons[index]
            messages.append(message)
        attrs[semconv.GEN_AI_OUTPUT_MESSAGES] = dumps(messages, max_chars)
    return attrs


def finish(client: Client, record: SpanRecord, response: Any) -> None:
    try:
        config = client.config
        record.lazy = functools.partial(
            response_attributes, response, config.capture_content, config.max_payload_chars
        )
        record.end()
    except Exception as exc:
        client.errors.report("instrumentation", exc)


def fail(client: Client, record: SpanRecord, exc: BaseException) -> None:
    try:
        record.fail(exc)
        record.end()
    except Exception as error:
        client.errors.report("instrumentation", error)


class StreamState:
    """Chunks and first-token time of one streamed completion; ends its span once."""

    __slots__ = ("chunks", "client", "ended", "record")

    def __init__(self, client: Client, record: SpanRecord) -> None:
        self.client = client
        self.record = record
        self.chunks: list[Any] = []
        self.ended = False

    def add(self, chunk: Any) -> None:
        if not self.chunks:
            try:
                now = time.time_ns()
                self.record.attributes[semconv.WK_TIME_TO_FIRST_TOKEN_MS] = (now - self.record.start_ns) / 1e6
                self.record.add_event(semconv.WK_FIRST_TOKEN_EVENT, None, now)
            except Exception as exc:
                self.client.errors.report("instrumentation", exc)
        self.chunks.append(chunk)

    def end(self, exc: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        if exc is not None:
            fail(self.client, self.record, exc)
            return
        try:
            config = self.client.config
            self.record.lazy = functools.partial(
                stream_attributes, self.chunks, config.capture_content, config.max_payload_chars
            )
            self.record.end()
        except Exception as error:
            self.client.errors.report("instrumentation", error)


class _ProxyBase:
    """What both stream proxies share: the span ends if the stream is garbage-collected
    unfinished, and every other attribute is the wrapped stream's."""

    _wk_stream: Any
    _wk_state: StreamState

    def __del__(self) -> None:
        state = getattr(self, "_wk_state", None)
        if state is not None and not state.ended:
            state.end()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_wk_"):
            raise AttributeError(name)
        return getattr(self._wk_stream, name)


class StreamProxy(_ProxyBase):
    """Wraps a sync stream; the span ends when it is exhausted, closed or collected."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        self._wk_stream = stream
        self._wk_iter: Iterator[Any] = iter(stream)
        self._wk_state = state

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._wk_iter)
        except StopIteration:
            self._wk_state.end()
            raise
        except BaseException as exc:
            self._wk_state.end(exc)
            raise
        self._wk_state.add(chunk)
        return chunk

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._wk_state.end()
        close = getattr(self._wk_stream, "close", None)
        if callable(close):
            close()


class AsyncStreamProxy(_ProxyBase):
    """Wraps an async stream; the span ends when it is exhausted, closed or collected."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        self._wk_stream = stream
        self._wk_iter: AsyncIterator[Any] = stream.__aiter__()
        self._wk_state = state

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._wk_iter.__anext__()
        except StopAsyncIteration:
            self._wk_state.end()
            raise
        except BaseException as exc:
            self._wk_state.end(exc)
            raise
        self._wk_state.add(chunk)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._wk_state.end()
        close = getattr(self._wk_stream, "close", None)
        if callable(close):
            result = close()
            if hasattr(result, "__await__"):
                await result


def _is_stream(result: Any, kwargs: dict[str, Any]) -> bool:
    return (
        bool(kwargs.get("stream"))
        and not isinstance(result, dict)
        and (hasattr(result, "__iter__") or hasattr(result, "__aiter__"))
    )


def traced_call(
    provider: str, model: Any, messages: Any, call: Callable[[], Any], kwargs: dict[str, Any]
) -> Any:
    """Run a sync chat call inside a span; streams come back wrapped."""
    client = current_client()
    record = start_chat(client, provider, model, messages, kwargs)
    if record is None:
        return call()
    try:
        result = call()
    except BaseException as exc:
        fail(client, record, exc)
        raise
    if _is_stream(result, kwargs):
        return StreamProxy(result, StreamState(client, record))
    finish(client, record, result)
    return result


async def traced_call_async(
    provider: str,
    model: Any,
    messages: Any,
    call: Callable[[], Awaitable[Any]],
    kwargs: dict[str, Any],
) -> Any:
    """Run an async chat call inside a span; async streams come back wrapped."""
    client = current_client()
    record = start_chat(client, provider, model, messages, kwargs)
    if record is None:
        return await call()
    try:
        result = await call()
    except BaseException as exc:
        fail(client, record, exc)
        raise
    if _is_stream(result, kwargs):
        return AsyncStreamProxy(result, StreamState(client, record))
    finish(client, record, result)
    return result
