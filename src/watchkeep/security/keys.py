"""API keys: verification with a short-lived cache.

The key format (scheme, prefix, SHA-256 digest) and its generation live in
``store.key_material``, shared with the repository that stores keys (the store imports
nothing above it); they are re-exported here for callers. A key is found by its
non-secret prefix and compared in constant time. Verified keys are cached for ``ttl``
seconds (``WATCHKEEP_KEY_CACHE_SECONDS``) so ingest does not hit the database on every
request. That cache is the only one: the gateway reads it too, so a key revoked
or a project deleted by another process (the CLI) stops working at most ``ttl`` seconds
after this process last read it from the store, and one revoked in this process stops at
once when the caller evicts it (``evict``, ``evict_project``). A key's expiry travels with
its cached answer and is checked on every look-up, so a cached key stops at its expiry,
not up to ``ttl`` seconds later.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    expires_at_unix_nano: int | None = None

    def can(self, permission: Permission) -> bool:
        """Whether this caller holds ``permission``."""
        return permission in self.permissions

    def expired(self, now_ns: int | None = None) -> bool:
        """Whether the key's expiry has passed (keys without one never expire)."""
        if self.expires_at_unix_nano is None:
            return False
        return self.expires_at_unix_nano <= (time.time_ns() if now_ns is None else now_ns)


_MAX_CACHED = 10_000  # answers (and digests) held; past it both start again empty


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
        # Presented key -> its digest, for keys that verified: hashing costs a call ~8 µs
        # in a server (OpenSSL's SHA-256, cold between requests) against ~0.3 µs for the
        # read. Only keys that passed ``verify`` get in, so random keys never grow it; it
        # holds no answer (a revoked or evicted key still misses ``_cache`` and is re-read).
        self._digests: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _well_formed(key: str) -> bool:
        return key.startswith(KEY_SCHEME) and len(key) >= len(KEY_SCHEME) + PREFIX_LENGTH + 8

    def cached(self, key: str) -> Principal | None:
        """The caller behind ``key`` if a fresh answer is cached; never reads the store,
        so the async gateway can call it on its event loop."""
        digest = self._digests.get(key)
        hit = self._cache.get(digest if digest is not None else hash_key(key))  # atomic reads: no lock
        if hit is None or hit.expires <= time.monotonic() or hit.principal.expired():
            return None
        return hit.principal

    def verify(self, key: str) -> Principal | None:
        """The caller behind ``key``, or None when it is unknown, malformed, revoked or expired."""
        if not self._well_formed(key):
            return None
        digest = hash_key(key)
        now = time.monotonic()  # before the read: an answer never outlives it by more than ttl
        hit = self._cache.get(digest)
        if hit is not None and hit.expires > now:
            return None if hit.principal.expired() else hit.principal
        stored = self._lookup(key_prefix(key))
        if stored is None or stored.revoked or not hmac.compare_digest(stored.key_hash, digest):
            return None
        principal = Principal(
            project_id=stored.project_id,
            project_name=stored.project_name,
            key_id=stored.key_id,
            role=stored.role,
            permissions=permissions_of(stored.role),
            expires_at_unix_nano=stored.expires_at_unix_nano,
        )
        if principal.expired():
            return None
        if self._ttl > 0:
            with self._lock:
                if len(self._cache) > _MAX_CACHED:
                    self._cache.clear()
                if len(self._digests) > _MAX_CACHED:
                    self._digests.clear()
                self._cache[digest] = _Cached(principal, key_prefix(key), now + self._ttl)
                self._digests[key] = digest
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
            self._digests.clear()

    def _drop(self, matches: Callable[[_Cached], bool]) -> int:
        with self._lock:
            doomed = [digest for digest, c in self._cache.items() if matches(c)]
            for digest in doomed:
                del self._cache[digest]
        return len(doomed)


_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_LIFETIME_SECONDS = 10 * 366 * 86_400  # ten years: further is "never" in disguise


def parse_expiry(text: str, now_ns: int | None = None) -> int:
    """An expiry given as a duration (``30d``, ``12h``, ``90m``, ``2w``, ``3600s``) or an ISO
    date or time (``2027-01-31``, ``2027-01-31T12:00:00+01:00``; UTC when no zone is given)
    as Unix nanoseconds; ``ValueError`` when it does not parse, is not in the future, or lies
    more than ten years ahead."""
    now = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    match = _DURATION.fullmatch(text.lower())
    if match is not None:
        at = now + int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * 1_000_000_000
    else:
        try:
            when = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"expiry {text!r} is neither a duration like 30d nor an ISO date") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        at = int(when.timestamp() * 1_000_000) * 1000
    return check_expiry(at, now)


def check_expiry(at_ns: int, now_ns: int | None = None) -> int:
    """``at_ns`` when it is a usable key expiry (future, at most ten years ahead); else ``ValueError``."""
    now = time.time_ns() if now_ns is None else now_ns
    if at_ns <= now:
        raise ValueError("the expiry must be in the future")
    if at_ns > now + MAX_LIFETIME_SECONDS * 1_000_000_000:
        raise ValueError("the expiry may be at most ten years ahead (omit it for a key that never expires)")
    return at_ns
