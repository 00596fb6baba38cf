"""Sealed format v2: compress-then-seal, v1 values still open, and sealing in decode workers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from watchkeep.ingest.decode_pool import DecodePool, prepare
from watchkeep.ingest.service_types import Encoding
from watchkeep.security.crypto import DecryptionError, Keyring, new_key, pack, unpack
from watchkeep.store.sealing import row_aad, seal_payload_rows

AAD = row_aad("span_payloads", "input", 1)
PROSE = json.dumps(
    [{"role": "user", "content": "Summarise the quarterly report for the board, with the risks first. " * 12}]
)


def _v1(key: str, text: str, aad: bytes) -> str:
    """A value as version 1 sealed it (no codec byte, the row's AAD alone)."""
    raw = base64.b64decode(key)
    nonce = os.urandom(12)
    body = nonce + AESGCM(raw).encrypt(nonce, text.encode(), aad)
    return f"wkenc:v1:{Keyring.from_keys(key).current_id}:{base64.urlsafe_b64encode(body).decode()}"


def test_long_text_is_compressed_inside_the_seal_and_short_text_kept_raw() -> None:
    ring = Keyring.from_keys(new_key())
    sealed = ring.seal(PROSE, AAD)
    assert sealed.startswith(f"wkenc:v2:{ring.current_id}:")
    assert len(sealed) < len(PROSE) / 2  # repetitive prose: zstd wins even after base64
    assert ring.open(sealed, AAD) == PROSE
    assert pack(b"hi") == b"\x00hi"
    assert pack(PROSE.encode())[:1] == b"\x01"
    incompressible = os.urandom(300)
    assert pack(incompressible) == b"\x00" + incompressible
    for data in (b"", b"hi", PROSE.encode(), incompressible):
        assert unpack(pack(data)) == data
    assert ring.open(ring.seal("", AAD), AAD) == ""


def test_version_1_values_still_open_and_rotate_to_version_2() -> None:
    key = new_key()
    ring = Keyring.from_keys(key)
    old = _v1(key, PROSE, AAD)
    assert ring.open(old, AAD) == PROSE
    assert not ring.is_current(old)  # rotation re-seals it (and so compresses it)
    with pytest.raises(DecryptionError, match="failed authentication"):
        ring.open(old, row_aad("span_payloads", "input", 2))


def test_a_wrong_project_or_a_relabelled_version_is_refused() -> None:
    ring = Keyring.from_keys(new_key())
    sealed = ring.seal(PROSE, AAD)
    for other in (row_aad("span_payloads", "input", 2), row_aad("span_payloads", "output", 1)):
        with pytest.raises(DecryptionError, match="failed authentication"):
            ring.open(sealed, other)
    with pytest.raises(DecryptionError, match="failed authentication"):
        ring.open(sealed.replace("wkenc:v2:", "wkenc:v1:", 1), AAD)
    with pytest.raises(DecryptionError, match="unsupported ciphertext version"):
        ring.open(sealed.replace("wkenc:v2:", "wkenc:v9:", 1), AAD)
    with pytest.raises(DecryptionError, match="unknown payload codec"):
        unpack(b"\x07abc")


def test_a_keyring_pickles_as_its_keys() -> None:
    previous = new_key()
    ring = Keyring.from_keys(new_key(), [previous])
    copy = pickle.loads(pickle.dumps(ring))
    assert copy.key_ids == ring.key_ids
    assert copy.open(ring.seal(PROSE, AAD), AAD) == PROSE
    assert ring.open(copy.seal("x", AAD), AAD) == "x"


def _body(spans: int) -> bytes:
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.input.messages", "value": {"stringValue": PROSE}},
    ]
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "ab" * 16,
                                    "spanId": f"{i + 1:016x}",
                                    "name": "chat m",
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": "1700000001000000000",
                                    "attributes": attrs,
                                }
                                for i in range(spans)
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()


def test_seal_payload_rows_binds_each_side_to_its_project_and_column() -> None:
    ring = Keyring.from_keys(new_key())
    (row,) = seal_payload_rows(ring, [(7, "t", "s", PROSE, None, 1)])
    assert row[:3] == (7, "t", "s")
    assert row[4] is None
    assert row[5] == 1
    assert ring.open(row[3], row_aad("span_payloads", "input", 7)) == PROSE
    with pytest.raises(DecryptionError):
        ring.open(row[3], row_aad("span_payloads", "output", 7))


def test_prepare_seals_only_when_given_a_sealer() -> None:
    ring = Keyring.from_keys(new_key())
    plain = prepare(3, _body(2), Encoding.JSON, 0, None)
    sealed = prepare(3, _body(2), Encoding.JSON, 0, None, sealer=ring)
    assert not plain.batch.sealed
    assert sealed.batch.sealed
    assert [r[3] for r in plain.batch.payloads] == [
        ring.open(r[3], row_aad("span_payloads", "input", 3)) for r in sealed.batch.payloads
    ]


def test_the_decode_workers_seal_when_asked_and_inline_exports_are_left_to_the_writer() -> None:
    ring = Keyring.from_keys(new_key())
    pool = DecodePool(1, None, sealer=ring)
    big, small = _body(300), _body(1)
    assert pool.offloads(big)
    assert not pool.offloads(small)
    try:
        sealed = asyncio.run(pool.prepare(4, big, Encoding.JSON, 0, seal=True))
        unsealed = asyncio.run(pool.prepare(4, big, Encoding.JSON, 0))  # more redaction to come
        inline = asyncio.run(pool.prepare(4, small, Encoding.JSON, 0, seal=True))
    finally:
        pool.close()
    assert sealed.batch.sealed
    assert len(sealed.batch.payloads) == 300
    assert all(ring.open(r[3], row_aad("span_payloads", "input", 4)) == PROSE for r in sealed.batch.payloads)
    assert not unsealed.batch.sealed
    assert unsealed.batch.payloads[0][3] == PROSE
    assert not inline.batch.sealed
    assert inline.batch.payloads[0][3] == PROSE
