"""The PII detector's fast path: cheap triggers, one RE2 pass, that prove most text holds
no candidate at all (ADR 0018). A trigger is a superset of the shapes the detectors can
accept, never a detector itself. Internal to ``watchkeep.sdk.redact``, which re-exports
``pii_hits``."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence

from watchkeep.sdk.pii_regex import Pattern, compile_pattern

__all__ = [
    "DATE_TIME",
    "JOIN",
    "MAX_SCAN_CHARS",
    "NANP",
    "TRIGGER_ANY",
    "TRIGGER_NANP",
    "Regions",
    "first_trigger",
    "hits",
    "pii_hits",
    "ten_digits_but_a_date_time",
    "triggered",
    "triggers",
]

MAX_SCAN_CHARS = 4 * 1024 * 1024
"""A longer string is not scanned but replaced whole (fail closed)."""
Regions = str | tuple[str, ...]
"""The region, or regions, whose national phone numbers count without a ``+`` (ISO codes)."""
NANP = frozenset(("US", "CA"))
JOIN = "\n\n"

_TRIGGER_COMMON = (
    r"@|sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abposr]-|AIza|[sr]k_(?:live|test)_|eyJ|-----BEGIN"
    r"|[Bb]earer|bc1|0x[0-9a-fA-F]{40}|[A-Z]{2}\d{2}|\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b"
    r"|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    r"|\b\d{3}[- ]\d{2}[- ]\d{4}\b|\b\d(?:[ \-]?\d){12,18}\b|\+[ (]{0,2}\d"
)
_SEP = r"[ \-.()/]{0,3}"


def ten_digits_but_a_date_time() -> str:
    """Ten digits, up to three separators between each, bounded, except exactly a date and
    its hour ("2024-03-15 12", "15.03.2024 12": separators s4 and s6, or s2 and s4, one of
    ``-/.``, s8 one space, the others empty). RE2 has no lookahead, so the exception is the
    union of templates that each break one of those conditions; without it, every clean
    text with a timestamp would cost a second RE2 call past the date."""
    some, point = r"[ \-.()/]{1,3}", r"[\-/.]"
    not_point = r"(?: |[ \-.()/]{2,3})"  # neither empty nor one of -/.
    not_space = r"(?:[\-.()/][ \-.()/]{0,2}| [ \-.()/]{1,2})?"  # empty, or anything but " "

    def digits(**seps: str) -> str:
        return r"\d" + "".join(seps.get(f"s{i}", _SEP) + r"\d" for i in range(1, 10))

    breaks = (
        digits(s9=some), digits(s8=not_space), digits(s7=some), digits(s5=some),
        digits(s3=some), digits(s1=some), digits(s4=not_point + "?"), digits(s6=not_point),
        digits(s6=point, s2=some), digits(s6="", s2=not_point + "?"),
    )  # fmt: skip
    return r"\b(?:" + "|".join(breaks) + r")\b"


# Without a "+", a NANP number has 10 digits, or 11 from a 1 (see ``redact._phone_plausible``);
# one behind "(" or after a 1 is never a bare date.
# No trigger matches a newline, so texts joined by blank lines trigger exactly where each
# would alone (``hits``).
# (the stdlib engine never runs a trigger: its alternation backtracks at every position)
TRIGGER_NANP = compile_pattern(
    _TRIGGER_COMMON
    + rf"|\((?:1{_SEP})?\d(?:{_SEP}\d){{9}}\b|\b1{_SEP}\d(?:{_SEP}\d){{9}}\b|"
    + ten_digits_but_a_date_time(),
    0,
)
TRIGGER_ANY = compile_pattern(_TRIGGER_COMMON + r"|\d(?:[ \-.()/]{0,3}\d){5,}", 0)
_DATE_TIME_SOURCE = r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?: \d{1,2})?"
DATE_TIME = re.compile(_DATE_TIME_SOURCE)
_DATE_TIME_BYTES = re.compile(_DATE_TIME_SOURCE.encode())


def _trigger(region: Regions) -> Pattern:
    nanp = region in NANP if isinstance(region, str) else NANP.issuperset(region)
    return TRIGGER_NANP if nanp else TRIGGER_ANY


def triggers(text: str, region: Regions, pos: int = 0) -> Iterator[tuple[int, int]]:
    """Every trigger in ``text`` from ``pos`` (character offsets) but a date, or a date and
    its hour: "2024-03-15 12" (of 12:30) has ten digits but is no phone number."""
    for spans in _trigger(region).spans(text, pos):
        start, end = spans[0]
        if not DATE_TIME.fullmatch(text, start, end):
            yield start, end


def first_trigger(text: str, region: Regions, pos: int = 0) -> tuple[int, int] | None:
    """The first trigger from ``pos`` but a date (as ``triggers``), one RE2 call a try."""
    trigger = _trigger(region)
    while (found := trigger.first(text, pos)) is not None:
        start, end = found[0]
        if not DATE_TIME.fullmatch(text, start, end):
            return start, end
        pos = end if end > start else end + 1
    return None


def triggered(text: str, region: Regions) -> bool:
    """Whether any trigger (other than a date) is in ``text``: one pass, up to the first."""
    return first_trigger(text, region) is not None


def _first_in_bytes(trigger: Pattern, data: bytes, pos: int) -> int | None:
    """Where the first trigger but a date starts in ``data`` from ``pos`` (bytes)."""
    while (found := trigger.first_in_bytes(data, pos)) is not None:
        start, end = found
        if not _DATE_TIME_BYTES.fullmatch(data, start, end):
            return start
        pos = end if end > start else end + 1
    return None


def hits(texts: Sequence[str], region: Regions) -> list[bool]:
    """Which of ``texts`` hold a trigger, from one pass over them all joined by blank lines
    and encoded once: one call into RE2 for a whole batch of spans instead of one per
    text (most texts hold none), then one from each text after a hit."""
    hit = [False] * len(texts)
    if not texts:
        return hit
    joined = texts[0] if len(texts) == 1 else JOIN.join(texts)
    data = joined.encode()
    trigger = _trigger(region)
    found = _first_in_bytes(trigger, data, 0)
    if found is None:
        return hit
    ascii_only = len(data) == len(joined)  # then byte offsets are character offsets
    starts: list[int] = []
    offset = 0
    for t in texts:
        starts.append(offset)
        offset += (len(t) if ascii_only else len(t.encode())) + len(JOIN)
    while found is not None:
        at = bisect_right(starts, found) - 1
        hit[at] = True
        if at + 1 == len(texts):
            break
        found = _first_in_bytes(trigger, data, starts[at + 1])  # the rest of a hit text: skipped
    return hit


# A quote and a backslash are alike to every trigger (in none, no word characters), so JSON
# whose escapes are all \" and \\ is searched in its source text as it is: each value
# appears there verbatim between quotes, up to such characters. \n and \t are replaced by
# their characters first (a backslash pair by a newline, first, so that it cannot join the
# next character into an escape); the letter they drop begins no trigger, so the source
# without it holds no fewer (for text that is not JSON after all). Other escapes (\u, \/,
# \r, \b, \f) are rare: such text counts as a hit, and is parsed.
_OTHER_ESCAPE = re.compile(r'\\[^"\\]')
_RESOLVED = (("\\\\", "\n"), ("\\n", "\n"), ("\\t", "\t"))


def _screenable(text: str) -> str | None:
    """What to search ``text`` as: itself, JSON with its common escapes resolved, or
    ``None`` when it cannot be proven clean without parsing (or is too long to scan)."""
    if len(text) > MAX_SCAN_CHARS:
        return None
    if "\\" not in text or text.lstrip()[:1] not in ("{", "[") or not _OTHER_ESCAPE.search(text):
        return text
    for escape, char in _RESOLVED:
        text = text.replace(escape, char)
    return None if _OTHER_ESCAPE.search(text) else text


def pii_hits(texts: Sequence[str], region: Regions = "US") -> list[bool]:
    """Which of ``texts`` may hold a finding, from one trigger pass over them all. False
    proves ``redact_text`` returns that text unchanged; JSON with rare escapes (``\\u``...)
    and text too long to scan always count as hits."""
    screened = [_screenable(t) for t in texts]
    scan = [s for s in screened if s is not None]
    if len(scan) == len(texts):
        return hits(scan, region)
    found = iter(hits(scan, region))
    return [True if s is None else next(found) for s in screened]
