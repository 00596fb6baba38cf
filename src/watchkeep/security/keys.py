"""API keys: generation, hashing and verification with a short-lived cache.

Keys are 256-bit random secrets, so a fast SHA-256 digest is the right hash (slow password
hashes protect low-entropy secrets and would cost milliseconds on every request). A key
is found by its non-secret prefix and compared in constant time. Verified keys are cached
for ``ttl`` seconds (``WATCHKEEP_KEY_CACHE_SECONDS``) so ingest does not hit the database
on every request. That cache is the only one: the gateway reads it too, so a key revoked
or a project deleted by another process (the CLI) stops working at most ``ttl`` seconds
after this process last read it from the store, and one revoked in this process stops at
once when the caller evicts it (``evict``, ``evict_project``).
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


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    prefix: str
    expires: float  # monotonic time: the store was read at most ``ttl`` seconds before


class KeyVerifier:
    """Turns a presented key into a Principal, caching positive answers briefly."""

    def __init__(self, lookup: Callable[[str], StoredKey | None], ttl: float = 30.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _well_formed(key: str) -> bool:
        return key.startswith(KEY_SCHEME) and len(key) >= len(KEY_SCHEME) + PREFIX_LENGTH + 8

    def cached(self, key: str) -> Principal | None:
        """The caller behind ``key`` if a fresh answer is cached; never reads the store,
        so the async gateway can call it on its event loop."""
        hit = self._cache.get(hash_key(key))  # a dict read is atomic: no lock on the hot path
        if hit is None or hit.expires <= time.monotonic():
            return None
        return hit.principal

    def verify(self, key: str) -> Principal | None:
        """The caller behind ``key``, or None when it is unknown, malformed or revoked."""
        if not self._well_formed(key):
            return None
        digest = hash_key(key)
        now = time.monotonic()  # before the read: an answer never outlives it by more than ttl
        hit = self._cache.get(digest)
        if hit is not None and hit.expires > now:
            return hit.principal
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
                self._cache[digest] = _Cached(principal, key_prefix(key), now + self._ttl)
        return principal

    def evict(self, prefix: str) -> int:
        """Drop the cached answer for the key with ``prefix`` (after revoking it here);
        the number of entries dropped."""
        return self._drop(lambda c: c.prefix == prefix)

    def evict_project(self, project_id: int) -> int:
        """Drop the cached answers for every key of ``project_id`` (after deleting it here)."""
        return self._drop(lambda c: c.principal.project_id == project_id)

    def forget(self) -> None:
        """Drop every cached answer."""
        with self._lock:
            self._cache.clear()

    def _drop(self, matches: Callable[[_Cached], bool]) -> int:
        with self._lock:
            doomed = [digest for digest, c in self._cache.items() if matches(c)]
            for digest in doomed:
                del self._cache[digest]
        return len(doomed)
