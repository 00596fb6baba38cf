"""The keyring: AES-256-GCM sealing, versioned ciphertexts, row binding and key errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from watchkeep.config import Settings
from watchkeep.security.crypto import (
    DecryptionError,
    EncryptionKeyError,
    Keyring,
    key_id,
    keyring_from_settings,
    new_key,
    parse_key,
    with_encryption_defaults,
)
from watchkeep.security.secure_mode import InsecureConfiguration, check_secure_mode, secure_mode_problems
from watchkeep.store.sealing import open_json, open_text, row_aad, seal_json

AAD = row_aad("span_payloads", "input", 1)


def test_seal_is_versioned_random_and_opens_with_its_row() -> None:
    ring = Keyring.from_keys(new_key())
    one, two = ring.seal("my prompt", AAD), ring.seal("my prompt", AAD)
    assert one.startswith(f"wkenc:v2:{ring.current_id}:")
    assert one != two  # a fresh nonce each time
    assert "my prompt" not in one
    assert ring.open(one, AAD) == "my prompt"
    assert len(ring.current_id) == 8
    assert ring.key_ids == [ring.current_id]


def test_a_ciphertext_moved_to_another_project_or_column_fails() -> None:
    ring = Keyring.from_keys(new_key())
    sealed = ring.seal("secret", AAD)
    for other in (row_aad("span_payloads", "input", 2), row_aad("span_payloads", "output", 1)):
        with pytest.raises(DecryptionError, match="failed authentication"):
            ring.open(sealed, other)


def test_a_tampered_ciphertext_fails() -> None:
    ring = Keyring.from_keys(new_key())
    sealed = ring.seal("secret", AAD)
    body = bytearray(base64.urlsafe_b64decode(sealed.rsplit(":", 1)[1]))
    body[-1] ^= 1
    tampered = sealed.rsplit(":", 1)[0] + ":" + base64.urlsafe_b64encode(bytes(body)).decode()
    with pytest.raises(DecryptionError):
        ring.open(tampered, AAD)


def test_unknown_key_id_is_named_never_garbage() -> None:
    old = Keyring.from_keys(new_key())
    sealed = old.seal("text", AAD)
    with pytest.raises(DecryptionError, match=old.current_id):
        Keyring.from_keys(new_key()).open(sealed, AAD)


def test_previous_keys_still_open_and_legacy_plaintext_reads_as_it_is() -> None:
    first, second = new_key(), new_key()
    sealed = Keyring.from_keys(first).seal("older", AAD)
    ring = Keyring.from_keys(second, [first])
    assert ring.open(sealed, AAD) == "older"
    assert not ring.is_current(sealed)
    assert ring.is_current(ring.seal("new", AAD))
    assert ring.open("plain legacy text", AAD) == "plain legacy text"
    assert open_text(None, "plain", AAD) == "plain"
    with pytest.raises(ValueError, match="no encryption key"):
        open_text(None, sealed, AAD)


def test_json_values_round_trip() -> None:
    ring = Keyring.from_keys(new_key())
    value = {"question": "where is alice@example.com?", "n": [1, 2]}
    sealed = seal_json(ring, value, AAD)
    assert isinstance(sealed, str)
    assert "alice" not in sealed
    assert open_json(ring, sealed, AAD) == value
    assert open_json(ring, {"plain": True}, AAD) == {"plain": True}
    assert seal_json(ring, None, AAD) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "exactly 32 bytes, got 16"),
    ],
)
def test_bad_keys_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message):
        parse_key(text, "encryption key")


def test_keyring_from_settings(tmp_path: Path) -> None:
    assert keyring_from_settings(Settings(home=tmp_path)) is None
    current, previous = new_key(), new_key()
    ring = keyring_from_settings(
        Settings(
            home=tmp_path,
            encryption_key=SecretStr(current),
            encryption_previous_keys=SecretStr(f"{previous}, "),
        )
    )
    assert ring is not None
    assert ring.current_id == key_id(base64.b64decode(current))
    assert set(ring.key_ids) == {key_id(base64.b64decode(k)) for k in (current, previous)}
    key_file = tmp_path / "key"
    key_file.write_text(current + "\n")
    from_file = keyring_from_settings(Settings(home=tmp_path, encryption_key_file=key_file))
    assert from_file is not None
    assert from_file.current_id == ring.current_id
    with pytest.raises(EncryptionKeyError, match="missing"):
        keyring_from_settings(Settings(home=tmp_path, encryption_key_file=tmp_path / "missing"))
    with pytest.raises(EncryptionKeyError, match="no current key"):
        keyring_from_settings(Settings(home=tmp_path, encryption_previous_keys=SecretStr(previous)))


def test_secure_mode_needs_a_valid_key(tmp_path: Path) -> None:
    check_secure_mode(Settings(home=tmp_path))  # off: nothing checked
    bare = Settings(home=tmp_path, secure=True)
    assert any("WATCHKEEP_ENCRYPTION_KEY" in p for p in secure_mode_problems(bare))
    with pytest.raises(InsecureConfiguration, match="no encryption key"):
        check_secure_mode(bare)
    with pytest.raises(InsecureConfiguration, match="32 bytes"):
        check_secure_mode(Settings(home=tmp_path, secure=True, encryption_key=SecretStr("c2hvcnQ=")))
    check_secure_mode(Settings(home=tmp_path, secure=True, encryption_key=SecretStr(new_key())))


def test_payload_search_needs_the_operators_consent_once_encrypted(tmp_path: Path) -> None:
    key = SecretStr(new_key())
    assert with_encryption_defaults(Settings(home=tmp_path)).search_index
    assert not with_encryption_defaults(Settings(home=tmp_path, encryption_key=key)).search_index
    assert with_encryption_defaults(
        Settings(home=tmp_path, encryption_key=key, search_index=True)
    ).search_index
