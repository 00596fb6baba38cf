"""Cheap validation of OpenAI request bodies: a few type checks, no per-request models.

The body is forwarded mostly as sent (upstreams validate their own extensions), so
only what the gateway itself relies on is checked: the model, the messages, the
stream flags and the sampling numbers that decide caching and limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from watchkeep.gateway.errors import invalid

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Fields a caller may not set: they would let a request pick where or how it is sent.
_FORBIDDEN = ("api_base", "base_url", "api_key", "custom_llm_provider", "extra_headers")


@dataclass(slots=True)
class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    model: str
    body: dict[str, Any]
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    temperature: float
    max_tokens: int | None

    def upstream_body(self, model: str, *, stream: bool | None = None) -> dict[str, Any]:
        """The body for a deployment: its model name, and usage always asked for in streams."""
        body = dict(self.body)
        body["model"] = model
        streaming = self.stream if stream is None else stream
        body["stream"] = streaming
        if streaming:
            body["stream_options"] = {"include_usage": True}
        else:
            body.pop("stream_options", None)
        return body


@dataclass(slots=True)
class EmbeddingsRequest:
    """A validated ``/v1/embeddings`` body."""

    model: str
    body: dict[str, Any]

    def upstream_body(self, model: str) -> dict[str, Any]:
        """The body for a deployment, with its model name."""
        return {**self.body, "model": model}


def _load(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    for name in _FORBIDDEN:
        if name in body:
            raise invalid(f"'{name}' cannot be set by callers", name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("'model' must be a non-empty string", "model")
    return body


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"'{name}' must be a number from {low} to {high}", name)
    return float(value)


def _check_message(i: int, message: Any) -> None:
    if not isinstance(message, dict):
        raise invalid(f"messages[{i}] must be an object", f"messages[{i}]")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise invalid(f"messages[{i}].role must be one of {sorted(ROLES)}", f"messages[{i}].role")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise invalid(f"messages[{i}].content must be a string or a list of parts", f"messages[{i}].content")


def parse_chat(raw: bytes) -> ChatRequest:
    """The request in ``raw``, or a 400 ``GatewayError`` naming the first problem."""
    body = _load(raw)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        _check_message(i, message)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid("'stream_options' must be an object", "stream_options")
    include_usage = bool(options and options.get("include_usage"))
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid("only n=1 is supported", "n")
    temperature = _number(body, "temperature", 0.0, 2.0)
    _number(body, "top_p", 0.0, 1.0)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise invalid("'max_tokens' must be a positive integer", "max_tokens")
    return ChatRequest(
        model=body["model"],
        body=body,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        temperature=1.0 if temperature is None else temperature,  # OpenAI's default
        max_tokens=max_tokens,
    )


def parse_embeddings(raw: bytes) -> EmbeddingsRequest:
    """The embeddings request in ``raw``, or a 400 ``GatewayError``."""
    body = _load(raw)
    value = body.get("input")
    ok = isinstance(value, str) and value != ""
    if isinstance(value, list) and value:
        ok = all(isinstance(v, str) for v in value) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    if not ok:
        raise invalid("'input' must be a non-empty string or array of strings", "input")
    return EmbeddingsRequest(model=body["model"], body=body)


def message_text(message: dict[str, Any]) -> str:
    """The text of a message's content (string or text parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
