"""When a silence asked for ends: a duration (``2h``, as key expiries are written) or a time,
at most ``MAX_SILENCE_S`` ahead, so no monitor is muted and forgotten for good.

Shared by the REST API and the console, so both refuse the same input with the same words.
"""

from __future__ import annotations

from watchkeep.security.keys import parse_expiry

NS = 1_000_000_000
MAX_SILENCE_S = 30 * 86400
MAX_REASON = 500


def silence_end(duration: str | None, until_ns: int | None, now_ns: int) -> int:
    """The end of a silence in Unix ns from exactly one of ``duration`` or ``until_ns``;
    ``ValueError`` with a message for a person when it is missing, malformed, past or too far."""
    if (duration is None) == (until_ns is None):
        raise ValueError("give either 'for' (a duration like 2h) or 'until' (a time), not both")
    if duration is not None:
        try:
            end = parse_expiry(duration, now_ns)
        except ValueError as exc:
            raise ValueError(_duration_refusal(str(exc), duration)) from None
    else:
        assert until_ns is not None
        end = until_ns
        if end <= now_ns:
            raise ValueError("'until' must be in the future")
    if end > now_ns + MAX_SILENCE_S * NS:
        raise ValueError("a silence may last at most 30 days")
    return end


def _duration_refusal(why: str, duration: str) -> str:
    """The key-expiry parser's refusal, in a silence's words."""
    if "ten years" in why:
        return "a silence may last at most 30 days"
    if "future" in why:
        return "'for' must be a positive duration"
    return f"'for' must be a duration like 30m, 2h, 1d or 1w, not {duration[:40]!r}"
