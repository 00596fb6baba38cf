"""Turning captured Python objects into the JSON strings spans carry.

Runs on the export thread (or on a foreign span's thread). It must accept anything a
user function takes or returns, so every failure degrades to a string, never raises.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_PREVIEW_CHARS = 1000


def _plain(obj: Any) -> Any:
    """orjson's fallback: pydantic models, mappings, iterables, then ``str``."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            return dump()
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return f"<{len(obj)} bytes>"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    text = str(obj)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def dumps(obj: Any, max_chars: int) -> str:
    """JSON text for ``obj``; longer than ``max_chars`` becomes a truncated JSON string."""
    try:
        text = orjson.dumps(obj, default=_plain, option=_OPTIONS).decode()
    except (TypeError, ValueError, RecursionError):
        text = orjson.dumps(_plain(obj)).decode()
    if len(text) > max_chars:
        cut = len(text) - max_chars
        return orjson.dumps(f"{text[:max_chars]}...[truncated {cut} chars]").decode()
    return text


def bind_arguments(signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call arguments by parameter name, without ``self``/``cls``."""
    if not args and not kwargs:
        return {}
    if signature is None:
        return {"args": list(args), "kwargs": kwargs} if kwargs else list(args)
    try:
        bound = signature.bind_partial(*args, **kwargs).arguments
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    result: dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.items()):
        if index == 0 and name in ("self", "cls"):
            continue
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            result.update(value)
        else:
            result[name] = value
    return result


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings (llama.cpp), ``obj.name`` for objects (openai)."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Sequence):
        for item in content:
            kind = field_of(item, "type")
            if kind == "text":
                parts.append({"type": "text", "content": field_of(item, "text")})
            else:
                parts.append({"type": str(kind or "unknown"), "content": _plain(item)})
        return parts
    return [{"type": "text", "content": str(content)}]


def genai_message(message: Any) -> dict[str, Any]:
    """One chat message (OpenAI-style dict or object) in the OTel GenAI ``parts`` shape."""
    if isinstance(message, Mapping) and "parts" in message:
        return dict(message)
    role = field_of(message, "role") or "user"
    parts = _content_parts(field_of(message, "content"))
    for call in field_of(message, "tool_calls") or ():
        function = field_of(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": field_of(call, "id"),
                "name": field_of(function, "name"),
                "arguments": field_of(function, "arguments"),
            }
        )
    tool_call_id = field_of(message, "tool_call_id")
    if role == "tool" and tool_call_id:
        parts = [
            {
                "type": "tool_call_response",
                "id": tool_call_id,
                "response": field_of(message, "content"),
            }
        ]
    result: dict[str, Any] = {"role": role, "parts": parts}
    finish_reason = field_of(message, "finish_reason")
    if finish_reason:
        result["finish_reason"] = finish_reason
    return result


def genai_messages(messages: Any) -> Any:
    """A message list in the GenAI shape; a bare string becomes one user message."""
    if isinstance(messages, str):
        return [{"role": "user", "parts": [{"type": "text", "content": messages}]}]
    if isinstance(messages, Sequence):
        return [genai_message(m) for m in messages]
    return messages
