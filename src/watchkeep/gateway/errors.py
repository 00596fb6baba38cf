"""Errors of the gateway, in the OpenAI wire format that OpenAI clients understand."""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    """An error answered to the caller as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON error object."""
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )


def invalid(message: str, param: str | None = None) -> GatewayError:
    """A 400 for a body that is not a valid request."""
    return GatewayError(400, message, param=param, code="invalid_request")


class UpstreamError(Exception):
    """A deployment failed; ``retryable`` says whether another try or deployment may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.timeout = timeout

    @property
    def outcome(self) -> str:
        """A short label for traces and metrics."""
        if self.timeout:
            return "timeout"
        return f"status_{self.status}" if self.status else "connection_error"


def upstream_status_error(status: int, message: str, retry_after: float | None = None) -> UpstreamError:
    """Classify an upstream HTTP error: 408, 409, 429 and 5xx are worth another try."""
    retryable = status in (408, 409, 429) or status >= 500
    return UpstreamError(message, status=status, retryable=retryable, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the delta form; dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
