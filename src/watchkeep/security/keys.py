"""API keys: verification with a short-lived cache.

The key format (scheme, prefix, SHA-256 digest) and its generation live in
``store.key_material``, shared with the repository that stores keys (the store imports
nothing above it); they are re-exported here for callers. A key is found by its
non-secret prefix and compared in constant time. Verified keys are cached for ``ttl``
seconds (``WATCHKEEP_KEY_CACHE_SECONDS``) so ingest does not hit the database on every
request. That cache is the only one: the gateway reads it too, so a key revoked
or a project deleted by another process (the CLI) stops working at most ``ttl`` seconds
after this process last read it from the store, and one revoked in this process stops at
once when the caller evicts it (``evict``, ``evict_project``).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchkeep.security.authz import Permission, permissions_of
from watchkeep.store.key_material import KEY_SCHEME as KEY_SCHEME
from watchkeep.store.key_material import PREFIX_LENGTH as PREFIX_LENGTH
from watchkeep.store.key_material import StoredKey as StoredKey
from watchkeep.store.key_material import hash_key as hash_key
from watchkeep.store.key_material import key_prefix as key_prefix
from watchkeep.store.key_material import new_key as new_key


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
