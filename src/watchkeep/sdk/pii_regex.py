"""The regular-expression engine of the PII detector: RE2 called directly, stdlib ``re``
where it is cheaper or RE2 is missing, and one RE2 set that names the patterns a text can
match at all (ADR 0018). Internal to ``watchkeep.sdk.redact``."""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any

try:  # linear-time matching when available (the server extra installs it)
    import re2 as _re_engine
except ImportError:  # pragma: no cover - the SDK alone
    _re_engine = re

__all__ = ["SMALL_TEXT", "Pattern", "Spans", "compile_pattern", "pattern_set"]

SMALL_TEXT = 512
"""Up to this length a non-ASCII text runs a detector on the stdlib engine (RE2's Python
wrapper maps byte offsets back to characters at a high cost per match); an ASCII text, or a
longer one, always gets RE2's linear time."""

try:  # RE2's own matcher, without the wrapper's generator and Match object (~1 µs a call)
    _UNANCHORED: Any = _re_engine._Anchor.UNANCHORED
except AttributeError:  # pragma: no cover - the SDK without RE2, or another binding
    _UNANCHORED = None

Spans = Sequence[tuple[int, int]]
"""The spans of a match: the whole match first, then each group's."""


def _raw_spans(raw: Any, data: bytes, pos: int = 0) -> Iterator[Spans]:
    """Non-overlapping leftmost-first matches of a compiled RE2 over ``data`` from ``pos``."""
    end = len(data)
    while pos <= end:
        spans = raw.Match(_UNANCHORED, data, pos, end)
        start, stop = spans[0]
        if start < 0:
            return
        yield spans
        pos = stop if stop > start else stop + 1


class Pattern:
    """One detector pattern, compiled for both engines (same leftmost-first semantics)."""

    __slots__ = ("_bytes", "_groups", "_linear", "_raw", "_small", "_small_limit", "source")

    def __init__(self, pattern: str, small_limit: int = SMALL_TEXT) -> None:
        self.source = pattern
        self._linear: Any = _re_engine.compile(pattern)
        self._raw: Any = getattr(self._linear, "_regexp", None) if _UNANCHORED is not None else None
        self._small = re.compile(pattern, re.ASCII)  # RE2's \d, \s and \b are ASCII too
        self._groups = self._small.groups + 1
        self._small_limit = small_limit
        self._bytes: re.Pattern[bytes] | None = None  # ``first_in_bytes`` without RE2's matcher

    def first_in_bytes(self, data: bytes, pos: int = 0) -> tuple[int, int] | None:
        """The first match's span in UTF-8 ``data`` from ``pos``, in bytes: one RE2 call
        over a whole batch of texts encoded once (RE2's ASCII ``\\b`` and ``\\d``, as
        ``first``; without RE2's matcher, stdlib ``re`` on the bytes, same semantics)."""
        if self._raw is not None:
            start, end = self._raw.Match(_UNANCHORED, data, pos, len(data))[0]
            return None if start < 0 else (start, end)
        if self._bytes is None:
            self._bytes = re.compile(self.source.encode(), re.ASCII)
        found = self._bytes.search(data, pos)
        return None if found is None else found.span()

    def first(self, text: str, pos: int = 0) -> Spans | None:
        """The first match's spans from ``pos``, or ``None``: ``spans`` without a generator."""
        if self._raw is not None and text.isascii():
            spans: Spans = self._raw.Match(_UNANCHORED, text.encode(), pos, len(text))
            return None if spans[0][0] < 0 else spans
        return next(self.spans(text, pos), None)

    def spans(self, text: str, pos: int = 0) -> Iterator[Spans]:
        """Non-overlapping matches from ``pos``, as ``re.finditer``, each as its group spans
        (in characters)."""
        if self._raw is not None and text.isascii():  # bytes offsets are character offsets
            return _raw_spans(self._raw, text.encode(), pos)
        if len(text) <= self._small_limit:
            return (m.regs for m in self._small.finditer(text, pos))
        return (tuple(m.span(g) for g in range(self._groups)) for m in self._linear.finditer(text, pos))


def compile_pattern(pattern: str, small_limit: int = SMALL_TEXT) -> Pattern:
    return Pattern(pattern, small_limit)


class _All:
    """Every pattern may match: what a pattern set answers without RE2."""

    def __contains__(self, item: object) -> bool:
        return True


def pattern_set(patterns: Sequence[Pattern]) -> Callable[[str], Container[Pattern]]:
    """``matching(text)``: which of ``patterns`` match somewhere in ``text``, from one RE2
    pass over all of them at once (everything, without RE2)."""
    if _re_engine is re:  # pragma: no cover - the SDK without RE2
        return lambda text: _All()
    gate = _re_engine.Set.SearchSet()
    for pattern in patterns:
        gate.Add(pattern.source)
    gate.Compile()
    raw = getattr(gate, "_set", gate)  # RE2's own, like ``_raw_spans``; else the wrapper

    def matching(text: str) -> Container[Pattern]:
        return {patterns[i] for i in raw.Match(text.encode()) or ()}

    return matching
