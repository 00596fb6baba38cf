"""The one bearer-key check of every HTTP edge: the REST routes and the gateway's fast path.

It parses ``Authorization: Bearer <key>`` and resolves the caller through the one key
cache (``KeyVerifier``): a fresh cached answer is read on the event loop, a store
look-up runs on a thread. Each edge maps ``KeyRefused`` to its own error format.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from watchkeep.security.keys import KeyVerifier, Principal

MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"
INVALID_KEY = "invalid or revoked API key"


class KeyRefused(Exception):
    """No usable bearer key, or one that is unknown, malformed or revoked (a 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def bearer_key(authorization: str | None) -> str | None:
    """The key of a ``Bearer <key>`` header value (any case of ``Bearer``), else None."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


async def principal_for(keys: KeyVerifier, authorization: str | None) -> Principal:
    """The caller behind an ``Authorization`` header value; ``KeyRefused`` when there is none."""
    key = bearer_key(authorization)
    if key is None:
        raise KeyRefused(MISSING_KEY)
    principal = keys.cached(key)
    if principal is None:
        principal = await run_in_threadpool(keys.verify, key)
    if principal is None:
        raise KeyRefused(INVALID_KEY)
    return principal
