"""OpenAPI details FastAPI does not add by itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_BAD_BODY = {
    "description": "The body is not valid JSON (or not UTF-8)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def document_common_errors(app: FastAPI) -> None:
    """Every operation that takes a JSON body can answer 400 when the body does not parse."""
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
