"""Encryption at rest: a keyring of AES-256-GCM keys and versioned ciphertext strings.

A sealed value is text, so it fits the columns that held the plaintext:
``wkenc:v2:<key id>:<base64url(nonce || ciphertext || tag)>``. Version 2 compresses before
it encrypts (the plaintext is a codec byte, then raw or zstd bytes, ADR 0025) and binds
the version into the associated data; version 1 values (no codec byte) still open. The key id (first 8 hex
characters of SHA-256 of the key) names the key that sealed it, so earlier keys keep
reading until ``watchkeep keys rotate-encryption`` has moved every value to the current
one. The associated data binds a value to its row (project and column): a ciphertext
copied into another project's row fails authentication instead of decrypting there.
Values without the prefix are legacy plaintext and are read as they are.
The AEAD itself is ``cryptography``'s AESGCM (OpenSSL), never our own (ADR 0019).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchkeep.config import Settings
from watchkeep.store.sealing import SEALED_PREFIX

VERSION = "v2"
_HEAD = f"{SEALED_PREFIX}{VERSION}:"
_V1_HEAD = f"{SEALED_PREFIX}v1:"
_V2_AAD = b"v2:"  # a v2 value relabelled "v1" (or back) fails authentication
KEY_BYTES = 32
NONCE_BYTES = 12
# The codec byte that starts a v2 plaintext. Texts shorter than this are not worth a zstd
# frame (its header alone is ~6 bytes); longer ones are kept raw when zstd does not shrink them.
_RAW, _ZSTD = b"\x00", b"\x01"
COMPRESS_FROM_BYTES = 128
_codecs = threading.local()  # zstd contexts are not thread-safe: one pair per thread


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(_codecs, "pair", None)
    if pair is None:
        # Level 1: 800 characters of messages shrink to ~0.63 in ~7 µs (level 3: same ratio, slower).
        pair = (zstandard.ZstdCompressor(level=1, write_checksum=False), zstandard.ZstdDecompressor())
        _codecs.pair = pair
    return pair


def pack(data: bytes) -> bytes:
    """``data`` behind its codec byte, zstd-compressed where that makes it shorter."""
    if len(data) >= COMPRESS_FROM_BYTES:
        packed = _zstd()[0].compress(data)
        if len(packed) + 1 < len(data):
            return _ZSTD + packed
    return _RAW + data


def unpack(body: bytes) -> bytes:
    """The bytes ``pack`` was given (the body was authenticated before it got here)."""
    codec, data = body[:1], body[1:]
    if codec == _RAW:
        return data
    if codec == _ZSTD:
        return _zstd()[1].decompress(data)
    raise DecryptionError(f"unknown payload codec {codec!r}")


class EncryptionKeyError(ValueError):
    """A key in the settings is not base64 of exactly 32 bytes (or its file cannot be read)."""


class DecryptionError(ValueError):
    """A sealed value cannot be opened: unknown key id, a malformed value or a failed tag."""


def key_id(key: bytes) -> str:
    """The public name of a key: first 8 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str, where: str) -> bytes:
    """The 32 bytes of a base64 key; a clear error naming ``where`` otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncryptionKeyError(f"{where}: not valid base64 ({exc})") from None
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(f"{where}: must be base64 of exactly 32 bytes, got {len(raw)} bytes")
    return raw


def new_key() -> str:
    """A fresh random key, base64, as WATCHKEEP_ENCRYPTION_KEY takes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(slots=True)
class Keyring:
    """The current key (seals) and every key that may still open stored values."""

    current: bytes
    previous: list[bytes] = field(default_factory=list)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False)
    _current_id: str = field(init=False, repr=False)
    _current_cipher: AESGCM = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._current_id = key_id(self.current)
        self._ciphers = {key_id(k): AESGCM(k) for k in (*self.previous, self.current)}
        self._current_cipher = self._ciphers[self._current_id]

    @property
    def current_id(self) -> str:
        return self._current_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its keys (the ciphers are rebuilt): decode workers seal payloads too."""
        return (Keyring, (self.current, list(self.previous)))

    def seal(self, text: str, aad: bytes) -> str:
        """``text`` compressed where it pays, encrypted under the current key, bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        body = nonce + self._current_cipher.encrypt(nonce, pack(text.encode()), _V2_AAD + aad)
        return f"{_HEAD}{self._current_id}:{base64.urlsafe_b64encode(body).decode()}"

    def open(self, text: str, aad: bytes) -> str:
        """The plaintext of a sealed value (v2 or v1); legacy plaintext (no prefix) as it is."""
        if not text.startswith(SEALED_PREFIX):
            return text
        if text.startswith(_HEAD):
            head, v2 = _HEAD, True
        elif text.startswith(_V1_HEAD):
            head, v2 = _V1_HEAD, False
        else:
            raise DecryptionError(f"unsupported ciphertext version: {text[: len(_HEAD) + 4]!r}")
        kid, _, body = text[len(head) :].partition(":")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptionError(
                f"value sealed with key id {kid!r}, which is not configured "
                f"(known: {', '.join(self._ciphers)}): add it to WATCHKEEP_ENCRYPTION_PREVIOUS_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(body)
            if not v2:
                return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _V2_AAD + aad)
        except (binascii.Error, ValueError, InvalidTag):
            raise DecryptionError(
                f"value sealed with key id {kid!r} failed authentication: altered, or moved from another row"
            ) from None
        return unpack(plain).decode()

    def is_current(self, text: str) -> bool:
        """Whether ``text`` is sealed under the current key and format (rotation skips it)."""
        return text.startswith(f"{_HEAD}{self._current_id}:")

    @classmethod
    def from_keys(cls, current: str, previous: Iterable[str] = ()) -> Keyring:
        return cls(
            parse_key(current, "encryption key"),
            [parse_key(k, f"previous key #{i + 1}") for i, k in enumerate(previous)],
        )


def keyring_from_settings(settings: Settings) -> Keyring | None:
    """The settings' keyring, or None when no key is given (payloads stay plaintext)."""
    current: str | None = None
    if settings.encryption_key is not None:
        current = settings.encryption_key.get_secret_value()
    elif settings.encryption_key_file is not None:
        path = Path(settings.encryption_key_file).expanduser()
        try:
            current = path.read_text()
        except OSError as exc:
            raise EncryptionKeyError(f"encryption key file {path}: {exc.strerror or exc}") from None
    previous_text = settings.encryption_previous_keys
    previous = [
        k for k in (previous_text.get_secret_value() if previous_text else "").split(",") if k.strip()
    ]
    if current is None:
        if previous:
            raise EncryptionKeyError("previous encryption keys are set but no current key")
        return None
    return Keyring.from_keys(current, previous)


def with_encryption_defaults(settings: Settings) -> Settings:
    """``settings`` with payload search off when a key is given and the operator did not ask
    for it: the search index holds payload words in plain form, so with encryption on only an
    explicit WATCHKEEP_SEARCH_INDEX=true indexes them."""
    has_key = settings.encryption_key is not None or settings.encryption_key_file is not None
    if has_key and settings.search_index and "search_index" not in settings.model_fields_set:
        return settings.model_copy(update={"search_index": False})
    return settings
