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

import hashlib
import hmac
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson

from watchkeep.sdk.pii_checks import (
    b58check_ok,
    bech32_ok,
    iban_ok,
    ipv4_ok,
    ipv6_ok,
    jwt_ok,
    luhn_ok,
    ssn_ok,
)
from watchkeep.sdk.pii_regex import SMALL_TEXT, Pattern, compile_pattern, pattern_set
from watchkeep.sdk.pii_triggers import JOIN as _JOIN
from watchkeep.sdk.pii_triggers import MAX_SCAN_CHARS, Regions, pii_hits
from watchkeep.sdk.pii_triggers import NANP as _NANP
from watchkeep.sdk.pii_triggers import hits as _hits
from watchkeep.sdk.pii_triggers import triggered as _triggered
from watchkeep.sdk.pii_triggers import triggers as _triggers

try:
    import phonenumbers as _phonenumbers
except ImportError:  # pragma: no cover - the SDK alone
    _phonenumbers = None  # type: ignore[assignment]

__all__ = [
    "ACTIONS",
    "ENTITIES",
    "MAX_SCAN_CHARS",
    "SMALL_TEXT",
    "Action",
    "Finding",
    "Hasher",
    "PiiRedactor",
    "Regions",
    "default_hasher",
    "find_pii",
    "iban_ok",
    "luhn_ok",
    "pii_hits",
    "redact_text",
]

Action = Literal["mask", "hash", "drop", "keep"]
ACTIONS: tuple[Action, ...] = ("mask", "hash", "drop", "keep")
ENTITIES: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip", "secret", "crypto")
REDACTED = "[REDACTED]"
Hasher = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: its entity and where it is in the text."""

    entity: str
    start: int
    end: int


_EMAIL = compile_pattern(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}")
_CARD = compile_pattern(r"\d(?:[ \-]?\d){12,18}")
_IBAN = compile_pattern(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,32}")
_SSN = compile_pattern(r"\d{3}[- ]\d{2}[- ]\d{4}")
_IPV4 = compile_pattern(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6 = compile_pattern(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}")
_PHONE_CANDIDATE = compile_pattern(r"\+?\(?\d[\d \-.()/]{5,22}\d")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}", re.ASCII)
_PHONE_FALLBACK = compile_pattern(r"\+\d(?:[ \-.()]{0,2}\d){6,14}")
_ETH = compile_pattern(r"0x[0-9a-fA-F]{40}")
_BTC58 = compile_pattern(r"[13][1-9A-HJ-NP-Za-km-z]{25,34}")
_BECH32 = compile_pattern(r"bc1[02-9ac-hj-np-z]{11,71}")
_SECRETS = compile_pattern(
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|-----BEGIN [A-Z ]{0,32}PRIVATE KEY-----[A-Za-z0-9+/=\s\\:,.\-]*?-----END [A-Z ]{0,32}PRIVATE KEY-----"
)
_JWT = compile_pattern(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}")
_BEARER = compile_pattern(r"[Bb]earer +([A-Za-z0-9._~+/\-]{20,}=*)")

# Country -> IBAN length, for the countries most often met (others: 15..34 accepted).
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "SE": 24, "SK": 24,
}  # fmt: skip
_CARD_PREFIXES = ("4", "5", "2", "34", "37", "6", "35", "30", "36", "38")


def _bounded(text: str, start: int, end: int) -> bool:
    """True when the match is not glued to letters or digits on either side."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or after.isalnum() or before == "_" or after == "_")


def _simple(
    text: str, pattern: Any, entity: str, check: Callable[[str], bool] | None = None
) -> Iterator[Finding]:
    for m in pattern.spans(text):
        start, end = m[0]
        if _bounded(text, start, end) and (check is None or check(text[start:end])):
            yield Finding(entity, start, end)


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.spans(text):
        start, end = m[0]
        digits = text[start:end].replace(" ", "").replace("-", "")
        international = start > 0 and text[start - 1] == "+"  # a phone number
        if (
            digits.startswith(_CARD_PREFIXES)
            and luhn_ok(digits)
            and not international
            and _bounded(text, start, end)
        ):
            yield Finding("card", start, end)


def _ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN.spans(text):
        m_start, m_end = m[0]
        raw = text[m_start:m_end]
        want = _IBAN_LENGTHS.get(raw[:2])
        compact_all = raw.replace(" ", "")
        lengths = [want] if want else range(min(34, len(compact_all)), 14, -1)
        for length in lengths:
            if length > len(compact_all) or not iban_ok(compact_all[:length]):
                continue
            seen, end = 0, m_start
            while seen < length:  # map the compact length back onto the spaced text
                seen += raw[end - m_start] != " "
                end += 1
            if _bounded(text, m_start, end):
                yield Finding("iban", m_start, end)
            break


def _ipv4(text: str) -> Iterator[Finding]:
    for m in _IPV4.spans(text):
        start, end = m[0]
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        glued = before == "." or (after[:1] == "." and after[1:2].isdigit())
        if not glued and _bounded(text, start, end) and ipv4_ok(text[start:end]):
            yield Finding("ip", start, end)


def _phones(text: str, region: str, taken: list[Finding]) -> Iterator[Finding]:
    if _phonenumbers is None:
        yield from _simple(text, _PHONE_FALLBACK, "phone")
        return
    # phonenumbers is thorough but slow (~100 µs a call): it sees only plausible runs
    for m in _PHONE_CANDIDATE.spans(text):
        run_start, run_end = m[0]
        run = text[run_start:run_end]
        if not _phone_plausible(run, region) or any(f.start < run_end and run_start < f.end for f in taken):
            continue
        for start, end in _phone_matches(run, region):
            start, end = run_start + start, run_start + end
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
    for m in _BEARER.spans(text):
        yield Finding("secret", *m[1])


# Resolution order when findings overlap: the earlier entity wins.
_PRIORITY = {
    name: i for i, name in enumerate(("secret", "crypto", "iban", "card", "email", "ssn", "ip", "phone"))
}


# The fast path (``pii_triggers``): only windows around a trigger go through the detectors.
_MARGIN = 48  # characters kept either side of a trigger, then out to the next whitespace
_WHITESPACE = " \n\t\r"
_MIN_CHARS = 6  # "a@b.co": nothing shorter can hold a finding


def _edge_left(text: str, pos: int) -> int:
    lo = max(0, pos - _MARGIN)
    cut = max(text.rfind(ch, 0, lo) for ch in _WHITESPACE)
    return cut + 1 if cut >= 0 else 0


def _edge_right(text: str, pos: int) -> int:
    hi = min(len(text), pos + _MARGIN)
    cuts = [c for c in (text.find(ch, hi) for ch in _WHITESPACE) if c >= 0]
    return min(cuts) if cuts else len(text)


def _windows(text: str, region: Regions) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` windows around every trigger, edges on whitespace."""
    windows: list[tuple[int, int]] = []
    for start, trigger_end in _triggers(text, region):
        end = trigger_end
        if text.startswith("-----BEGIN", start):  # a key block runs to its END line
            found = text.find("-----END", end)
            end = len(text) if found < 0 else found + 8
        lo, hi = _edge_left(text, start), _edge_right(text, end)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
        else:
            windows.append((lo, hi))
    return windows


def find_pii(text: str, region: Regions = "US") -> list[Finding]:
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


_GATED = (
    _EMAIL, _SECRETS, _JWT, _BEARER, _CARD, _IBAN, _SSN, _IPV4, _IPV6, _ETH, _BTC58, _BECH32,
    _PHONE_CANDIDATE, _PHONE_FALLBACK,
)  # fmt: skip
_matching = pattern_set(_GATED)
"""The detector patterns that match somewhere in a text: a detector whose pattern matches
nowhere cannot find anything, so it is not run."""


def _detect(text: str, region: Regions) -> list[Finding]:
    """Every detector over all of ``text`` (the windows of ``find_pii``)."""
    can = _matching(text)
    found: list[Finding] = []
    if _EMAIL in can:
        found.extend(_simple(text, _EMAIL, "email"))
    if _SECRETS in can:
        found.extend(_simple(text, _SECRETS, "secret"))
    if _JWT in can:
        found.extend(_simple(text, _JWT, "secret", jwt_ok))
    if _BEARER in can:
        found.extend(_bearer(text))
    digits = _digit_count(text)
    if digits:
        found.extend(_digit_entities(text, region, digits, found, can))
    if _IPV6 in can and ("::" in text or text.count(":") >= 3):
        found.extend(_simple(text, _IPV6, "ip", ipv6_ok))
    if _BECH32 in can:
        found.extend(_simple(text, _BECH32, "crypto", bech32_ok))
    return _resolve(found)


def _digit_entities(
    text: str, region: Regions, digits: int, taken: list[Finding], can: Container[Pattern]
) -> list[Finding]:
    """Cards, IBANs, SSNs, IPv4, wallets and phones: each only where it could fit."""
    found: list[Finding] = []
    if digits >= 13 and _CARD in can:
        found.extend(_cards(text))
    if _IBAN in can:
        found.extend(_ibans(text))
    if digits >= 9 and _SSN in can:
        found.extend(_simple(text, _SSN, "ssn", ssn_ok))
    if _IPV4 in can and text.count(".") >= 3:
        found.extend(_ipv4(text))
    if _ETH in can:
        found.extend(_simple(text, _ETH, "crypto"))
    if _BTC58 in can:
        found.extend(_simple(text, _BTC58, "crypto", b58check_ok))
    if digits >= 7 and (_PHONE_CANDIDATE in can or _PHONE_FALLBACK in can):
        for one in (region,) if isinstance(region, str) else region:  # overlaps: ``_resolve``
            found.extend(list(_phones(text, one, [*taken, *found])))
    return found


def _digit_count(text: str) -> int:
    data = text.encode()
    return len(data) - len(data.translate(None, b"0123456789"))  # one C pass, no regex


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


def _replace(
    text: str, actions: Mapping[str, Action], hasher: Hasher | None, region: Regions, triggered: bool = False
) -> str:
    """``text`` redacted; ``triggered``: a trigger pass already found something in it."""
    if len(text) > MAX_SCAN_CHARS:
        return REDACTED
    short = triggered and _MIN_CHARS <= len(text) <= SMALL_TEXT
    findings = _detect(text, region) if short else find_pii(text, region)
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


def _collect(value: Any, out: list[str]) -> None:
    """Every string value inside parsed JSON, in the order ``_rebuild`` visits them."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, out)


def _rebuild(value: Any, strings: Iterator[str]) -> Any:
    """``value`` with its string values replaced, in ``_collect``'s order, from ``strings``."""
    if isinstance(value, str):
        return next(strings)
    if isinstance(value, list):
        return [_rebuild(v, strings) for v in value]
    if isinstance(value, dict):
        return {k: _rebuild(v, strings) for k, v in value.items()}
    return value


def redact_text(
    text: str,
    actions: Mapping[str, Action] | None = None,
    hasher: Hasher | None = None,
    region: Regions = "US",
    *,
    screened: bool = False,
) -> str:
    """``text`` with every finding masked, hashed or kept per ``actions`` (default: mask).

    JSON text is redacted inside its string values and stays valid JSON; a ``drop``
    finding turns the whole text into ``[REDACTED]``. ``screened``: ``pii_hits`` already
    counted ``text`` a hit, so its first trigger pass is not repeated.
    """
    actions = actions or {}
    try:
        head = text.lstrip()[:1]
        if head in ("{", "[") and len(text) <= MAX_SCAN_CHARS:
            if not screened and not pii_hits([text], region)[0]:
                return text  # no trigger in the source (common escapes resolved): none in any value
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                return _replace(text, actions, hasher, region)
            strings: list[str] = []
            _collect(parsed, strings)
            hit = _hits(strings, region)  # one trigger pass over every value
            if not any(hit):
                return text
            done = iter(
                [
                    _replace(v, actions, hasher, region, True) if h else v
                    for v, h in zip(strings, hit, strict=True)
                ]
            )
            redacted = _rebuild(parsed, done)
            return text if redacted == parsed else orjson.dumps(redacted).decode()
        return _replace(text, actions, hasher, region, screened)
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
        region: Regions = "US",
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
