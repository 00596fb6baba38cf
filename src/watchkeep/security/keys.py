"""API keys: generation, hashing and verification with a short-lived cache.

Keys are 256-bit random secrets, so a fast SHA-256 digest is the right hash (slow password
hashes protect low-entropy secrets and would cost milliseconds on every request). A key
is found by its non-secret prefix and compared in constant time. Verified keys are cached
for ``ttl`` seconds so ingest does not hit the database on every request; revocation
therefore takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchkeep.security.authz import Permission, permissions_of

KEY_SCHEME = "wk_"
PREFIX_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key of one project, with its role's permissions."""

    project_id: int
    project_name: str
    key_id: int
    role: str
    permissions: frozenset[Permission]

    def can(self, permission: Permission) -> bool:
        """Whether this caller holds ``permission``."""
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What the store knows of a key, looked up by its prefix."""

    key_id: int
    project_id: int
    project_name: str
    key_hash: str
    role: str
    revoked: bool


def new_key() -> tuple[str, str, str]:
    """A fresh key as ``(key, prefix, hash)``; only the prefix and hash are stored."""
    body = secrets.token_urlsafe(32).replace("-", "x").replace("_", "y")
    key = KEY_SCHEME + body
    return key, key_prefix(key), hash_key(key)


def key_prefix(key: str) -> str:
    """The non-secret part of ``key`` used to find its row."""
    return key[: len(KEY_SCHEME) + PREFIX_LENGTH]


def hash_key(key: str) -> str:
    """The stored digest of ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyVerifier:
    """Turns a presented key into a Principal, caching positive answers briefly."""

    def __init__(self, lookup: Callable[[str], StoredKey | None], ttl: float = 30.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def verify(self, key: str) -> Principal | None:
        """The caller behind ``key``, or None when it is unknown, malformed or revoked."""
        if not key.startswith(KEY_SCHEME) or len(key) < len(KEY_SCHEME) + PREFIX_LENGTH + 8:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        stored = self._lookup(key_prefix(key))
        if stored is None or stored.revoked or not hmac.compare_digest(stored.key_hash, digest):
            return None
        principal = Principal(
            project_id=stored.project_id,
            project_name=stored.project_name,
            key_id=stored.key_id,
            role=stored.role,
            permissions=permissions_of(stored.role),
        )
        if self._ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (principal, now + self._ttl)
        return principal

    def forget(self) -> None:
        """Drop every cached answer (after a revocation in this process)."""
        with self._lock:
            self._cache.clear()
