"""HTTP delivery of already-encoded payloads, with each answer classified for the pipeline.

The OTel ``OTLPSpanExporter`` is not used here: it takes ``ReadableSpan`` objects, so it
cannot send spooled bytes, and it retries by sleeping inside ``export``, which would
fight the deadlines of ``flush``/``shutdown``. This module sends bytes once and says
whether to count them delivered, keep them for later, or give up on them.
"""

from __future__ import annotations

import contextlib
import email.utils
import enum
import time
from dataclasses import dataclass

import httpx

from watchkeep.sdk.errors import ErrorLog

TRACES_PATH = "/v1/traces"
SCORES_PATH = "/api/v1/scores"
_CONTENT_TYPES = {"spans": "application/x-protobuf", "score": "application/json"}
_PATHS = {"spans": TRACES_PATH, "score": SCORES_PATH}
_RETRY_STATUSES = frozenset({401, 403, 404, 408, 409, 425, 429})
MAX_RETRY_AFTER = 300.0


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # keep the payload (spool) and try again later
    REJECTED = "rejected"  # the server will never accept it; counted as dropped


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(status: int, retry_after: str | None) -> Result:
    if 200 <= status < 300:
        return Result(Outcome.DELIVERED, status)
    if status >= 500 or status in _RETRY_STATUSES:
        return Result(Outcome.RETRY, status, parse_retry_after(retry_after))
    return Result(Outcome.REJECTED, status)


class Transport:
    """One keep-alive HTTP client per process (re-created lazily after ``os.fork``)."""

    def __init__(self, endpoint: str, api_key: str | None, errors: ErrorLog) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._headers = {"User-Agent": "watchkeep-python-sdk"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._errors = errors
        self._client: httpx.Client | None = None

    def send(self, kind: str, payload: bytes, timeout: float) -> Result:
        """POST ``payload``; never raises, every failure is a ``Result``."""
        if self._client is None:
            self._client = httpx.Client(headers=self._headers)
        timeout = max(timeout, 0.05)
        try:
            response = self._client.post(
                self._endpoint + _PATHS[kind],
                content=payload,
                headers={"Content-Type": _CONTENT_TYPES[kind]},
                timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            )
        except Exception as exc:  # connection refused, timeout, TLS, anything
            self._errors.report(
                f"send-{kind}",
                exc,
                message="the server could not be reached; data is kept in the spool and replayed later",
            )
            return Result(Outcome.RETRY)
        result = classify(response.status_code, response.headers.get("Retry-After"))
        if response.status_code in (401, 403):
            self._errors.report(
                "auth",
                message=f"the server answered {response.status_code}: "
                "check WATCHKEEP_API_KEY; data is kept in the spool",
            )
        elif result.outcome is Outcome.REJECTED:
            self._errors.report(
                f"rejected-{response.status_code}",
                message=f"the server rejected a {kind} payload "
                f"({response.status_code}: {response.text[:200]})",
            )
        return result

    def after_fork(self) -> None:
        # The parent's connections are not ours to close; just stop using them.
        self._client = None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
