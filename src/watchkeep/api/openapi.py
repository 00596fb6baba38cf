"""OpenAPI details FastAPI does not add by itself, and the one helper routers document errors with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from watchkeep.api.schemas import ErrorResponse

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_BAD_BODY = {"description": "The body is not valid JSON (or not UTF-8)", "content": _ERROR}
_BAD_URL = {"description": "The URL holds a NUL byte", "content": _ERROR}


def document_common_errors(app: FastAPI) -> None:
    """Every operation that takes a JSON body can answer 400 when the body does not parse,
    and every one with path or query parameters when its URL holds a NUL byte."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    operation.setdefault("responses", {}).setdefault("400", _BAD_BODY)
                if operation.get("parameters"):  # a NUL byte in a path or query value is a 400
                    operation.setdefault("responses", {}).setdefault("400", _BAD_URL)
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorResponse",
            {
                "type": "object",
                "properties": {"error": {"type": "object"}},
                "required": ["error"],
            },
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


STANDARD_ERRORS: dict[int, str] = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    403: "Key lacks the permission",
    404: "Not found",
    409: "Conflict",
    413: "Body over rest_max_body_bytes",
    422: "Invalid request",
    429: "Too many requests (see Retry-After)",
}


def errors(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, object]]:
    """The ``responses=`` entries documenting error answers, all in the ``ErrorResponse`` shape.

    Each status gets its standard description, or the one given with it:
    ``errors(401, 403, (404, "No such monitor"))``.
    """
    out: dict[int | str, dict[str, object]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, STANDARD_ERRORS[entry])
        out[status] = {"model": ErrorResponse, "description": description}
    return out
