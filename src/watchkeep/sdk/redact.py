"""Find and redact personal data and secrets in text: the one detector, client and server.

It lives in the SDK because the SDK may import nothing of the server, while the server may
import the SDK (``security.pii`` adds per-project policy, keyed hashing and caching on top).
Every candidate comes from a regular expression (RE2 when installed: linear time) and is
then validated (Luhn, mod 97, base58check, bech32, SSN area rules, ``ipaddress``,
``phonenumbers`` when installed), so precision does not rest on the pattern alone.
JSON text is parsed and redacted value by value, so it stays valid JSON.

Most text holds nothing: one RE2 pass of cheap triggers (``@``, key prefixes, digit runs
shaped like a card, SSN, IP or phone number...) proves it and ends there; only triggered
text (a long one: only windows around its triggers) meets the detectors (ADR 0018).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

try:  # linear-time matching when available (the server extra installs it)
    import re2 as _re_engine
except ImportError:  # pragma: no cover - the SDK alone
    _re_engine = re

try:
    import phonenumbers as _phonenumbers
except ImportError:  # pragma: no cover - the SDK alone
    _phonenumbers = None  # type: ignore[assignment]

__all__ = [
    "ACTIONS",
    "ENTITIES",
    "MAX_SCAN_CHARS",
    "Action",
    "Finding",
    "Hasher",
    "PiiRedactor",
    "default_hasher",
    "find_pii",
    "iban_ok",
    "luhn_ok",
    "redact_text",
]

Action = Literal["mask", "hash", "drop", "keep"]
ACTIONS: tuple[Action, ...] = ("mask", "hash", "drop", "keep")
ENTITIES: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip", "secret", "crypto")
MAX_SCAN_CHARS = 4 * 1024 * 1024
"""A longer string is not scanned but replaced whole (fail closed)."""
REDACTED = "[REDACTED]"
Hasher = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: its entity and where it is in the text."""

    entity: str
    start: int
    end: int


SMALL_TEXT = 512
"""Up to this length the stdlib engine runs a detector (per match it costs a tenth of
RE2's Python wrapper); a longer text always gets RE2's linear time."""


class _Pattern:
    """One detector pattern, compiled for both engines (same leftmost-first semantics)."""

    __slots__ = ("_linear", "_small")

    def __init__(self, pattern: str) -> None:
        self._linear: Any = _re_engine.compile(pattern)
        self._small = re.compile(pattern, re.ASCII)  # RE2's \d, \s and \b are ASCII too

    def _engine(self, text: str) -> Any:
        return self._small if len(text) <= SMALL_TEXT else self._linear

    def finditer(self, text: str) -> Iterator[Any]:
        """Non-overlapping matches, as ``re.finditer``."""
        return self._engine(text).finditer(text)  # type: ignore[no-any-return]

    def match(self, text: str) -> Any:
        """A match at the start of ``text``, or ``None``."""
        return self._engine(text).match(text)


def _compile(pattern: str) -> _Pattern:
    return _Pattern(pattern)


_EMAIL = _compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}")
_CARD = _compile(r"\d(?:[ \-]?\d){12,18}")
_IBAN = _compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,32}")
_SSN = _compile(r"\d{3}[- ]\d{2}[- ]\d{4}")
_IPV4 = _compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6 = _compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")
_PHONE_CANDIDATE = _compile(r"\+?\(?\d[\d \-.()/]{5,22}\d")
_DATE = _compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
_NANP = frozenset(("US", "CA"))
_PHONE_FALLBACK = _compile(r"\+\d(?:[ \-.()]{0,2}\d){6,14}")
_ETH = _compile(r"0x[0-9a-fA-F]{40}")
_BTC58 = _compile(r"[13][1-9A-HJ-NP-Za-km-z]{25,34}")
_BECH32 = _compile(r"bc1[02-9ac-hj-np-z]{11,71}")
_SECRETS = _compile(
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|-----BEGIN [A-Z ]{0,32}PRIVATE KEY-----[A-Za-z0-9+/=\s\\:,.\-]*?-----END [A-Z ]{0,32}PRIVATE KEY-----"
)
_JWT = _compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
_BEARER = _compile(r"[Bb]earer +([A-Za-z0-9._~+/\-]{20,}=*)")

# Country -> IBAN length, for the countries most often met (others: 15..34 accepted).
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "SE": 24, "SK": 24,
}  # fmt: skip
_CARD_PREFIXES = ("4", "5", "2", "34", "37", "6", "35", "30", "36", "38")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32_CHARS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bounded(text: str, start: int, end: int) -> bool:
    """True when the match is not glued to letters or digits on either side."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum() or before == "_" or after == "_")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string."""
    backwards = digits[::-1]
    total = sum(map(int, backwards[::2])) + sum(_LUHN_DOUBLED[int(d)] for d in backwards[1::2])
    return total % 10 == 0


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def iban_ok(compact: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN without spaces."""
    moved = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def _ssn_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _b58check_ok(value: str) -> bool:
    number = 0
    for ch in value:
        number = number * 58 + _B58.index(ch)
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def _bech32_ok(value: str) -> bool:
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


def _jwt_ok(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def _simple(
    text: str, pattern: Any, entity: str, check: Callable[[str], bool] | None = None
) -> Iterator[Finding]:
    for m in pattern.finditer(text):
        start, end = m.span()
        if _bounded(text, start, end) and (check is None or check(m.group(0))):
            yield Finding(entity, start, end)


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = m.group(0).replace(" ", "").replace("-", "")
        international = m.start() > 0 and text[m.start() - 1] == "+"  # a phone number
        if (
            digits.startswith(_CARD_PREFIXES)
            and luhn_ok(digits)
            and not international
            and _bounded(text, *m.span())
        ):
            yield Finding("card", *m.span())


def _ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN.finditer(text):
        raw = m.group(0)
        want = _IBAN_LENGTHS.get(raw[:2])
        compact_all = raw.replace(" ", "")
        lengths = [want] if want else range(min(34, len(compact_all)), 14, -1)
        for length in lengths:
            if length > len(compact_all) or not iban_ok(compact_all[:length]):
                continue
            seen, end = 0, m.start()
            while seen < length:  # map the compact length back onto the spaced text
                seen += raw[end - m.start()] != " "
                end += 1
            if _bounded(text, m.start(), end):
                yield Finding("iban", m.start(), end)
            break


def _ipv4_ok(value: str) -> bool:
    return all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in value.split("."))


def _ipv4(text: str) -> Iterator[Finding]:
    for m in _IPV4.finditer(text):
        start, end = m.span()
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        glued = before == "." or (after[:1] == "." and after[1:2].isdigit())
        if not glued and _bounded(text, start, end) and _ipv4_ok(m.group(0)):
            yield Finding("ip", start, end)


def _ipv6_ok(value: str) -> bool:
    groups = [g for g in value.split(":") if g]
    if len(groups) < 2 or sum(len(g) for g in groups) < 4:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _phones(text: str, region: str, taken: list[Finding]) -> Iterator[Finding]:
    if _digit_count(text) < 7:
        return
    if _phonenumbers is None:
        yield from _simple(text, _PHONE_FALLBACK, "phone")
        return
    # phonenumbers is thorough but slow (~100 µs a call): it sees only plausible runs
    for candidate in _PHONE_CANDIDATE.finditer(text):
        run = candidate.group(0)
        if not _phone_plausible(run, region) or any(
            f.start < candidate.end() and candidate.start() < f.end for f in taken
        ):
            continue
        for start, end in _phone_matches(run, region):
            start, end = candidate.start() + start, candidate.start() + end
            if _bounded(text, start, end):
                yield Finding("phone", start, end)


def _phone_plausible(run: str, region: str) -> bool:
    """Cheap structural rules first: dates are not numbers, and without a ``+`` a number
    must be a national one of ``region`` (10 digits, or 11 from 1, in the NANP)."""
    if _DATE.match(run):
        return False
    digits = _digit_count(run)
    if run.startswith("+"):
        return 7 <= digits <= 15
    if region in _NANP:
        return digits == 10 or (digits == 11 and run.lstrip("(").startswith("1"))
    return 6 <= digits <= 15


@lru_cache(maxsize=8192)
def _phone_matches(run: str, region: str) -> tuple[tuple[int, int], ...]:
    assert _phonenumbers is not None
    matcher = _phonenumbers.PhoneNumberMatcher(
        run, region, leniency=_phonenumbers.Leniency.VALID, max_tries=20
    )
    return tuple((m.start, m.end) for m in matcher)


def _bearer(text: str) -> Iterator[Finding]:
    for m in _BEARER.finditer(text):
        yield Finding("secret", *m.span(1))


# Resolution order when findings overlap: the earlier entity wins.
_PRIORITY = {
    name: i for i, name in enumerate(("secret", "crypto", "iban", "card", "email", "ssn", "ip", "phone"))
}


# The fast path: one pass of cheap triggers proves most text holds no candidate at all;
# only windows around a trigger go through the detectors above. A trigger is a superset
# of the shapes the detectors can accept, never a detector itself.
_TRIGGER_COMMON = (
    r"@|sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abposr]-|AIza|[sr]k_(?:live|test)_|eyJ|-----BEGIN"
    r"|[Bb]earer|bc1|0x[0-9a-fA-F]{40}|[A-Z]{2}\d{2}|\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b"
    r"|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    r"|\b\d{3}[- ]\d{2}[- ]\d{4}\b|\b\d(?:[ \-]?\d){12,18}\b|\+[ (]{0,2}\d"
)
# Without a "+", a NANP number has 10 digits, or 11 from a 1 (see ``_phone_plausible``).
_TRIGGER_NANP = _re_engine.compile(
    _TRIGGER_COMMON + r"|(?:\(|\b)(?:1[ \-.()/]{0,3})?\d(?:[ \-.()/]{0,3}\d){9}\b"
)
_TRIGGER_ANY = _re_engine.compile(_TRIGGER_COMMON + r"|\d(?:[ \-.()/]{0,3}\d){5,}")
_DATE_TIME = re.compile(r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?: \d{1,2})?")
_MARGIN = 48  # characters kept either side of a trigger, then out to the next whitespace
_WHITESPACE = " \n\t\r"
_JOIN = "\n\n"
_MIN_CHARS = 6  # "a@b.co": nothing shorter can hold a finding


def _edge_left(text: str, pos: int) -> int:
    lo = max(0, pos - _MARGIN)
    cut = max(text.rfind(ch, 0, lo) for ch in _WHITESPACE)
    return cut + 1 if cut >= 0 else 0


def _edge_right(text: str, pos: int) -> int:
    hi = min(len(text), pos + _MARGIN)
    cuts = [c for c in (text.find(ch, hi) for ch in _WHITESPACE) if c >= 0]
    return min(cuts) if cuts else len(text)


def _triggered(text: str, region: str) -> bool:
    """Whether any trigger (other than a date) is in ``text``: one pass, up to the first."""
    trigger = _TRIGGER_NANP if region in _NANP else _TRIGGER_ANY
    for m in trigger.finditer(text.encode() if text.isascii() else text):
        start, end = m.span()
        if not _DATE_TIME.fullmatch(text[start:end]):
            return True
    return False


def _windows(text: str, region: str) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` windows around every trigger, edges on whitespace."""
    trigger = _TRIGGER_NANP if region in _NANP else _TRIGGER_ANY
    windows: list[tuple[int, int]] = []
    # an ASCII text is matched as bytes: the same offsets, without RE2's str offset mapping
    for m in trigger.finditer(text.encode() if text.isascii() else text):
        start, end = m.span()
        token = text[start:end]
        if _DATE_TIME.fullmatch(token):
            continue  # "2024-03-15 12" (of 12:30) has ten digits but is no phone number
        if token == "-----BEGIN":  # a key block runs to its END line
            found = text.find("-----END", end)
            end = len(text) if found < 0 else found + 8
        lo, hi = _edge_left(text, start), _edge_right(text, end)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
        else:
            windows.append((lo, hi))
    return windows


def find_pii(text: str, region: str = "US") -> list[Finding]:
    """Every non-overlapping finding in ``text``, in text order.

    A single trigger pass finds the few windows that could hold a finding; the detectors
    then see only those windows, joined by blank lines (no pattern spans a blank line
    except a key block, which gets a window of its own to its END line).
    """
    if len(text) < _MIN_CHARS:
        return []
    if len(text) <= SMALL_TEXT:  # short: one trigger search decides, windows would not pay
        return _detect(text, region) if _triggered(text, region) else []
    windows = _windows(text, region)
    if not windows:
        return []
    if windows[0] == (0, len(text)):
        return _detect(text, region)
    joined = _JOIN.join(text[lo:hi] for lo, hi in windows)
    found: list[Finding] = []
    offset = 0
    bases: list[tuple[int, int, int]] = []  # (joined start, joined end, original start)
    for lo, hi in windows:
        bases.append((offset, offset + hi - lo, lo))
        offset += hi - lo + len(_JOIN)
    for f in _detect(joined, region):
        for j_start, j_end, origin in bases:
            if j_start <= f.start and f.end <= j_end:
                found.append(Finding(f.entity, origin + f.start - j_start, origin + f.end - j_start))
                break
    return found


_SECRET_HINTS = (
    "sk-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza",
    "k_live_", "k_test_", "-----BEGIN",
)  # fmt: skip
# Stdlib gates (a character class or literal first: C-speed scans) that skip a detector
# whose pattern cannot match; each is a superset of its detector's pattern.
_IBAN_HINT = re.compile(r"[A-Z]{2}\d{2}")
_BTC58_HINT = re.compile(r"[13][1-9A-HJ-NP-Za-km-z]{25}")


def _detect(text: str, region: str) -> list[Finding]:
    """Every detector over all of ``text`` (the windows of ``find_pii``)."""
    found: list[Finding] = []
    if "@" in text:
        found.extend(_simple(text, _EMAIL, "email"))
    if any(hint in text for hint in _SECRET_HINTS):
        found.extend(_simple(text, _SECRETS, "secret"))
    if "eyJ" in text:
        found.extend(_simple(text, _JWT, "secret", _jwt_ok))
    if "earer" in text:
        found.extend(_bearer(text))
    digits = _digit_count(text)
    if digits:
        found.extend(_digit_entities(text, region, digits, found))
    if "::" in text or text.count(":") >= 3:
        found.extend(_simple(text, _IPV6, "ip", _ipv6_ok))
    if "bc1" in text:
        found.extend(_simple(text, _BECH32, "crypto", _bech32_ok))
    return _resolve(found)


def _digit_entities(text: str, region: str, digits: int, taken: list[Finding]) -> list[Finding]:
    """Cards, IBANs, SSNs, IPv4, wallets and phones: each only where it could fit."""
    found: list[Finding] = []
    if digits >= 13:
        found.extend(_cards(text))
    if _IBAN_HINT.search(text):
        found.extend(_ibans(text))
    if digits >= 9:
        found.extend(_simple(text, _SSN, "ssn", _ssn_ok))
    if digits >= 4 and text.count(".") >= 3:
        found.extend(_ipv4(text))
    if "0x" in text:
        found.extend(_simple(text, _ETH, "crypto"))
    if _BTC58_HINT.search(text):
        found.extend(_simple(text, _BTC58, "crypto", _b58check_ok))
    if digits >= 7:
        found.extend(list(_phones(text, region, [*taken, *found])))
    return found


def _digit_count(text: str) -> int:
    return sum(map(text.count, "0123456789"))  # ten C scans beat one regex findall


def _resolve(found: list[Finding]) -> list[Finding]:
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (_PRIORITY[f.entity], f.start - f.end))
    kept: list[Finding] = []
    for f in found:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept


def default_hasher(key: bytes) -> Hasher:
    """A keyed HMAC-SHA256 hasher: equal values under one key get equal tags."""

    def tag(entity: str, value: str) -> str:
        return hmac.new(key, f"{entity}:{value}".encode(), hashlib.sha256).hexdigest()[:8]

    return tag


class _Drop(Exception):
    """A finding whose action is ``drop``: the whole field goes."""


def _replace(text: str, actions: Mapping[str, Action], hasher: Hasher | None, region: str) -> str:
    if len(text) > MAX_SCAN_CHARS:
        return REDACTED
    findings = find_pii(text, region)
    if not findings:
        return text
    parts: list[str] = []
    last = 0
    for f in findings:
        action = actions.get(f.entity, "mask")
        if action == "keep":
            continue
        if action == "drop":
            raise _Drop
        label = f.entity.upper()
        value = text[f.start : f.end]
        token = f"[{label}:{hasher(f.entity, value)}]" if action == "hash" and hasher else f"[{label}]"
        parts.append(text[last : f.start])
        parts.append(token)
        last = f.end
    parts.append(text[last:])
    return "".join(parts)


def _walk(value: Any, actions: Mapping[str, Action], hasher: Hasher | None, region: str) -> Any:
    if isinstance(value, str):
        return _replace(value, actions, hasher, region)
    if isinstance(value, list):
        return [_walk(v, actions, hasher, region) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, actions, hasher, region) for k, v in value.items()}
    return value


def redact_text(
    text: str,
    actions: Mapping[str, Action] | None = None,
    hasher: Hasher | None = None,
    region: str = "US",
) -> str:
    """``text`` with every finding masked, hashed or kept per ``actions`` (default: mask).

    JSON text is redacted inside its string values and stays valid JSON; a ``drop``
    finding turns the whole text into ``[REDACTED]``.
    """
    actions = actions or {}
    try:
        head = text.lstrip()[:1]
        if head in ("{", "[") and len(text) <= MAX_SCAN_CHARS:
            if "\\" not in text and not _triggered(text, region):
                return text  # no escapes: no trigger in the source, none in any value
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                return _replace(text, actions, hasher, region)
            redacted = _walk(parsed, actions, hasher, region)
            return text if redacted == parsed else orjson.dumps(redacted).decode()
        return _replace(text, actions, hasher, region)
    except _Drop:
        return REDACTED


_ID_KEYS = ("id", "_id", ".id", "trace_id", "span_id")


class PiiRedactor:
    """The SDK's ``redact`` hook: ``redactor(attribute_key, text) -> text``.

    ``wk.init(redact=True)`` installs one masking every entity; pass ``actions`` or a
    ``hash_key`` for other actions. Identifier attributes (``*.id``) are left alone.
    """

    def __init__(
        self,
        actions: Mapping[str, Action] | None = None,
        hash_key: bytes | None = None,
        region: str = "US",
    ) -> None:
        unknown = set(actions or {}) - set(ENTITIES)
        if unknown:
            raise ValueError(f"unknown PII entities: {sorted(unknown)}")
        self._actions = dict(actions or {})
        self._hasher = default_hasher(hash_key) if hash_key else None
        self._region = region

    def __call__(self, key: str, text: str) -> str:
        """Redacted ``text`` (identifiers pass unchanged)."""
        if key.endswith(_ID_KEYS):
            return text
        return redact_text(text, self._actions, self._hasher, self._region)
