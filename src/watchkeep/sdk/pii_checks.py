"""The validators behind the PII detector's patterns: checksums and shape rules, so that
precision does not rest on a pattern alone (ADR 0018). Internal to ``watchkeep.sdk.redact``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re

import orjson

__all__ = ["b58check_ok", "bech32_ok", "iban_ok", "ipv4_ok", "ipv6_ok", "jwt_ok", "luhn_ok", "ssn_ok"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32_CHARS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string (byte sums in C: no per-digit Python)."""
    backwards = digits[::-1].encode()
    kept, doubled = backwards[::2], backwards[1::2].translate(_LUHN_DOUBLED)
    return (sum(kept) + sum(doubled) - 48 * len(backwards)) % 10 == 0


# each digit's doubled digit sum, as ASCII: 0->0, 1->2 ... 5->1 (10), 9->9 (18)
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def iban_ok(compact: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN without spaces."""
    moved = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def ssn_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def b58check_ok(value: str) -> bool:
    number = 0
    for ch in value:
        number = number * 58 + _B58.index(ch)
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def bech32_ok(value: str) -> bool:
    data = [_BECH32_CHARS.index(c) for c in value[3:]]
    values = [3, 3, 0, 2, 3, *data]  # hrp "bc" expanded
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk in (1, 0x2BC830A3)  # bech32, bech32m


def jwt_ok(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def ipv4_ok(value: str) -> bool:
    return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in value.split("."))


def ipv6_ok(value: str) -> bool:
    groups = [g for g in value.split(":") if g]
    if len(groups) < 2 or sum(len(g) for g in groups) < 4:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True
