"""Plain text out of a stored payload (a JSON list of messages, a JSON value, or text)."""

from __future__ import annotations

from typing import Any

import orjson


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(filter(None, (_content(v) for v in value)))
    if isinstance(value, dict):
        for key in ("content", "text", "parts", "message"):
            if key in value:
                return _content(value[key])
        return ""
    return "" if value is None else str(value)


def payload_text(payload: str | None) -> str | None:
    """The human-readable text of ``payload``: message contents joined, or the text itself."""
    if payload is None:
        return None
    stripped = payload.lstrip()
    if not stripped.startswith(("[", "{", '"')):
        return payload
    try:
        parsed = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return payload
    if isinstance(parsed, dict) and not any(k in parsed for k in ("content", "text", "parts", "message")):
        return payload  # a JSON answer in its own right, e.g. structured output
    return _content(parsed)
