"""The filter bar: a page's filters and time range, read from and written to its URL.

The query string is the state (a view can be shared and bookmarked); the bar validates
what it reads, so a hand-edited URL gets the default rather than an error page, and caps
every value's length. Pages pass ``bar.values`` to the same services the API uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

RANGES: dict[str, int] = {
    "15m": 15 * 60,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 86_400,
    "7d": 7 * 86_400,
    "30d": 30 * 86_400,
}
MAX_VALUE_CHARS = 200


@dataclass(frozen=True, slots=True)
class FilterField:
    """One control of the bar: free text, a search box, or a choice among ``options``."""

    name: str
    label: str
    kind: str = "text"  # text | search | select
    options: tuple[str, ...] = ()
    placeholder: str = ""


@dataclass(frozen=True, slots=True)
class FilterBar:
    """What a page is filtered by: field values (empty ones left out) and a time range."""

    fields: tuple[FilterField, ...]
    values: dict[str, str]
    range: str  # a key of RANGES, or "custom"
    since_ns: int
    until_ns: int
    ranges: tuple[str, ...] = field(default=tuple(RANGES))

    def params(self) -> dict[str, object]:
        """The bar's state as query parameters (for links that keep it)."""
        state: dict[str, object] = dict(self.values)
        state["range"] = self.range
        if self.range == "custom":
            state["since"] = _iso(self.since_ns)
            state["until"] = _iso(self.until_ns)
        return state


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def _parse_time(text: str | None) -> int | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text[:40])
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def read_filters(
    request: Request,
    fields: tuple[FilterField, ...],
    *,
    default_range: str = "24h",
    now_ns: int | None = None,
) -> FilterBar:
    """The bar of ``fields`` as the request's query string sets it."""
    query = request.query_params
    values: dict[str, str] = {}
    for f in fields:
        value = (query.get(f.name) or "").strip()[:MAX_VALUE_CHARS]
        if value and (f.kind != "select" or value in f.options):
            values[f.name] = value
    now = time.time_ns() if now_ns is None else now_ns
    chosen = query.get("range") or default_range
    since, until = _parse_time(query.get("since")), _parse_time(query.get("until"))
    if chosen == "custom" and since is not None and (until is None or since < until):
        return FilterBar(fields, values, "custom", since, until if until is not None else now)
    if chosen not in RANGES:
        chosen = default_range
    return FilterBar(fields, values, chosen, now - RANGES[chosen] * 1_000_000_000, now)
