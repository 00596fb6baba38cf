"""The key check's digest memo (``KeyVerifier``): it saves the hash, never an answer.

The gateway reads ``KeyVerifier.cached`` on every call; a key that verified keeps its
SHA-256 digest so the next call skips hashing. Revocation, eviction and random keys
must behave exactly as without the memo.
"""

from __future__ import annotations

import pytest

import watchkeep.security.keys as keys
from watchkeep.security.keys import KeyVerifier, StoredKey, key_prefix, new_key


def _verifier(revoked: bool = False) -> tuple[KeyVerifier, str, dict[str, StoredKey]]:
    key, prefix, digest = new_key()
    stored = {prefix: StoredKey(1, 7, "p", digest, "member", revoked)}
    return KeyVerifier(stored.get, ttl=60), key, stored


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    hashed: list[str] = []
    real = keys.hash_key

    def counting(key: str) -> str:
        hashed.append(key)
        return real(key)

    monkeypatch.setattr(keys, "hash_key", counting)
    return hashed


def test_a_verified_key_is_read_from_the_cache_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, key, _ = _verifier()
    assert verifier.verify(key) is not None
    hashed = _count_hashes(monkeypatch)
    for _ in range(3):
        principal = verifier.cached(key)
        assert principal is not None
        assert principal.project_id == 7
    assert hashed == []


def test_unknown_keys_are_hashed_and_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, key, _ = _verifier()
    assert verifier.verify(key) is not None
    hashed = _count_hashes(monkeypatch)
    strangers = [new_key()[0] for _ in range(50)]
    for stranger in strangers:
        assert verifier.cached(stranger) is None
        assert verifier.verify(stranger) is None
    assert verifier.cached(strangers[0]) is None
    assert hashed.count(strangers[0]) == 3  # each look-up hashed it afresh: nothing was kept
    assert verifier.cached(key) is not None


def test_a_revoked_key_stops_once_evicted_despite_its_remembered_digest() -> None:
    verifier, key, stored = _verifier()
    assert verifier.cached(key) is None  # nothing cached before the first verify
    assert verifier.verify(key) is not None
    prefix = key_prefix(key)
    stored[prefix] = StoredKey(1, 7, "p", stored[prefix].key_hash, "member", True)
    assert verifier.evict(prefix) == 1
    assert verifier.cached(key) is None
    assert verifier.verify(key) is None
    assert verifier.cached(key) is None


def test_forget_drops_the_digests_too(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, key, _ = _verifier()
    assert verifier.verify(key) is not None
    verifier.forget()
    hashed = _count_hashes(monkeypatch)
    assert verifier.cached(key) is None
    assert hashed == [key]
