"""OpenAPI documentation of the OpenAI-compatible routes (their handlers read raw bodies)."""

from __future__ import annotations

from typing import Any

from watchkeep.gateway.protocol import ROLES

_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": _NULLABLE_STRING,
                "code": _NULLABLE_STRING,
            },
        }
    },
}
_OBJECT = {"type": "object"}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request body",
        401: "Missing or invalid API key",
        403: "Key lacks models:invoke",
        404: "Unknown model",
        413: "Request body too large",
        429: "Rate limit reached (see Retry-After)",
        502: "Every deployment failed",
        504: "The upstream timed out",
    }
    return {
        str(s): {"description": reasons[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_CHAT_BODY = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"type": "string", "enum": sorted(ROLES)},
                    "content": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
                },
            },
        },
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
    },
}
_EMBEDDINGS_BODY = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string"}},
            ]
        },
    },
}
_UPSTREAM = (400, 401, 403, 404, 413, 429, 502, 504)

CHAT: dict[str, Any] = {
    "requestBody": _body(_CHAT_BODY),
    "responses": {
        "200": {
            "description": "A chat.completion, or chat.completion.chunk server-sent events when streaming",
            "content": {
                "application/json": {"schema": _OBJECT},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        **_errors(*_UPSTREAM),
    },
}
EMBEDDINGS: dict[str, Any] = {
    "requestBody": _body(_EMBEDDINGS_BODY),
    "responses": {
        "200": {"description": "An embeddings list", "content": {"application/json": {"schema": _OBJECT}}},
        **_errors(*_UPSTREAM),
    },
}
MODELS: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The models this key can call",
            "content": {"application/json": {"schema": _OBJECT}},
        },
        **_errors(401, 403),
    }
}
