"""What an API key is made of and what the store keeps of it.

The format sits here, below ``security``, because both sides must agree on it: the
project repository mints a key and stores its prefix and digest, and the verifier in
``security.keys`` finds a key by the same prefix and checks the same digest. Keys are
256-bit random secrets, so a fast SHA-256 digest is the right hash (slow password hashes
protect low-entropy secrets and would cost milliseconds on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_SCHEME = "wk_"
PREFIX_LENGTH = 12


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What the store knows of a key, looked up by its prefix."""

    key_id: int
    project_id: int
    project_name: str
    key_hash: str
    role: str
    revoked: bool
    expires_at_unix_nano: int | None = None  # past it the key authenticates no more


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
