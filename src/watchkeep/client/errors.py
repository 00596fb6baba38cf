"""What the client raises: one class per kind of failure, each with the API's error body."""

from __future__ import annotations

import contextlib
from typing import Any


class WatchkeepError(Exception):
    """Anything the client raises."""


class TransportError(WatchkeepError):
    """The server could not be reached or did not answer in time (the request may be retried)."""


class IncompleteExport(TransportError):
    """An export stream ended before its trailer line: the connection or server failed midway."""


class ApiError(WatchkeepError):
    """The API answered with an error status: ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status_code: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body = body


class AuthenticationError(ApiError):
    """401: a missing, unknown, revoked or expired key."""


class PermissionDenied(ApiError):
    """403: the key's role lacks the route's permission."""


class NotFound(ApiError):
    """404: nothing by that id in the key's project."""


class InvalidRequest(ApiError):
    """400 or 422: a malformed parameter or cursor."""


class Unavailable(ApiError):
    """429 or 503: try again later (``retry_after`` seconds when the server said)."""

    retry_after: float | None = None


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    422: InvalidRequest,
    429: Unavailable,
    503: Unavailable,
}


def error_for(status_code: int, body: Any, retry_after: str | None = None) -> ApiError:
    """The exception for an error answer; a body not in the API's shape is kept as is."""
    code, message = "http_error", f"HTTP {status_code}"
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        code = str(inner.get("code", code))
        message = str(inner.get("message", message))
    elif isinstance(body, str) and body:
        message = body[:500]
    exc = _BY_STATUS.get(status_code, ApiError)(status_code, code, message, body)
    if isinstance(exc, Unavailable) and retry_after:
        with contextlib.suppress(ValueError):
            exc.retry_after = float(retry_after)
    return exc
